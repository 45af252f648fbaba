@erp_outage
Feature: An ERP maintenance window delays returns, it does not lose them
  The ERP goes down for maintenance in the middle of a busy morning and answers 503 with
  Retry-After. Work that failed is retried once it is back: every return still gets its RMA
  and its refund, once.

  Scenario: Returns requested during the maintenance window still go through
    Given the ERP is down from day 1 08:00 for 5 hours
    When 12 returns are requested
    And the world settles
    Then no return is left stalled
    And every approved return has exactly one RMA
    And every refunded return has exactly one credit memo with the policy's amount
