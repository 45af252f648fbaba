@refunds
Feature: Customers are refunded after inspection, what the policy says
  The credit memo follows the warehouse's grading: an opened item is refunded less the
  restocking fee, unless the customer's reason exempts it, and nothing is refunded before
  anyone looked inside the box.

  Background:
    Given every customer asks for a refund
    And the warehouse finds most units opened
    And inspecting a return takes about 4 hours
    When 10 returns are requested
    And the world settles

  Scenario: No refund before the inspection
    Then no credit memo is posted before the return's inspection

  Scenario: Opened items are refunded less the restocking fee
    Then every refunded return has exactly one credit memo with the policy's amount
