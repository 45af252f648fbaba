@bad_input
Feature: Deliveries that cannot be trusted change nothing
  Anyone who can reach the webhook endpoint can send it anything. A delivery with a forged
  signature, a stale one (signed ten minutes ago: a replay) or a malformed body is refused,
  and nothing is written for it.

  Scenario Outline: New returns that arrive <how> are refused
    Given 40% of new return events from the portal arrive <how>
    When 8 returns are requested
    And the world settles
    Then nothing is done for a forged, stale or malformed delivery
    And no return is left stalled

    Examples:
      | how                     |
      | with a forged signature |
      | with a stale signature  |
      | malformed               |
