@ordering
Feature: Events that arrive out of order never move a return backwards
  Delivery is unordered: a carrier scan held up in a queue arrives after the parcel was
  received, an inspection arrives before its receipt. A return is judged by when things
  happened, not by when the news arrived.

  Scenario: Late carrier scans do not move a refunded return back to in transit
    Given the carrier delivers 50% of its scans out of order
    When 10 returns are requested
    And the world settles
    Then no return's status ever moves backwards
    And no return is left stalled

  Scenario: An inspection that arrives before its receipt waits for it
    Given the WMS delivers every receipt event 1 day late
    When 10 returns are requested
    And the world settles
    Then no return's status ever moves backwards
    And no return is left stalled
    And stock moves match the inspected dispositions
