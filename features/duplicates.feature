@duplicates
Feature: A fact announced twice is acted on once
  Webhooks are delivered at least once: the portal, the carrier and the WMS send the same event
  again (same event id), and sometimes announce the same fact again under a new event id (a
  double scan, a repeated receipt). Whatever arrives twice, the ERP must see one RMA, one stock
  movement per disposition and one credit memo.

  Background:
    Given the portal delivers every new return event twice
    And the portal sends every new return again under a new event id
    And the carrier sends every scan again under a new event id
    And the WMS delivers every inspection event twice
    And the WMS sends every receipt again under a new event id
    When 10 returns are requested
    And the world settles

  Scenario: One RMA, one label and one ASN per return, however often it is announced
    Then every approved return has exactly one RMA
    And every RMA gets one label and one expected receipt before its parcel arrives

  Scenario: Stock moves once per inspection, however often it is delivered
    Then stock moves match the inspected dispositions
    And every unit returned to a vendor is claimed from it once

  Scenario: One credit memo per refund
    Then every refunded return has exactly one credit memo with the policy's amount

  Scenario: Every return still ends
    Then no return is left stalled
    And no return's status ever moves backwards
