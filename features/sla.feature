@sla
Feature: Service levels hold through the January peak
  The day after Christmas brings about three times the usual returns. Customers still get
  their label within hours and their return closed within days, and the layer answers every
  webhook fast enough that no sender retries it. The layer's own time counts at face value:
  the hours below are the world's delays plus the wall seconds the layer took.

  Scenario: Labels within hours and returns closed within days at the peak
    Given demand follows the post-holiday peak profile
    And the simulated clock runs 30000 times faster than real time
    When 20 returns are requested
    And the world settles
    Then 95% of return requests get an RMA within 4 hours
    And 95% of returns are closed within 5 days
    And 95% of refunds follow their inspection within 24 hours
    And 99% of webhooks are acknowledged within 500 ms
