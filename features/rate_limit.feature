@rate_limit
Feature: A throttled ERP is given the time it asks for
  Above its rate limit the ERP answers 429 with Retry-After. An integration layer that retries
  at once is blocked; one that waits gets through. The limit counts wall-clock seconds, so the
  clock runs slower here (a second of waiting is five and a half simulated hours, not thirty),
  and returns come in a rush, so their calls go over the limit.

  Scenario: Calls refused with 429 wait for Retry-After, and every return still ends
    Given the ERP answers 429 above 20 requests per second
    And the simulated clock runs 20000 times faster than real time
    And about 400 return requests a day
    When 12 returns are requested
    And the world settles
    Then every throttled call waits as long as Retry-After says
    And no return is left stalled
