@eligibility
Feature: Returns the policy refuses are rejected, and nothing else happens to them
  The policy refuses a return requested after its window, and the ERP holds customers on
  credit or fraud hold. Such a return is rejected in the portal: no RMA, no label, no refund.

  Scenario Outline: A return is rejected when <why>
    Given <setup>
    When 6 returns are requested
    And the world settles
    Then every return is rejected
    And no ineligible return gets an RMA
    And no return is left stalled

    Examples:
      | why                           | setup                                        |
      | it is outside the window      | every request is made after the return window |
      | the customer is on hold       | every customer is on hold                     |
