@receiving
Feature: Partial receipts and split dispositions are settled unit by unit
  A parcel arrives a unit short; the warehouse grades the units of one line differently
  (two restocked, one scrapped). Stock moves and the refund follow what was inspected, not
  what was announced.

  Scenario: Short parcels and split lines
    Given every parcel arrives with a unit missing
    And the warehouse splits every line between two dispositions
    And every customer asks for a refund
    When 12 returns are requested
    And the world settles
    Then no return is left stalled
    And stock moves match the inspected dispositions
    And every refunded return has exactly one credit memo with the policy's amount
