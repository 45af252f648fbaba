Feature: Our layer keeps its promises under the faults we worry about

  Scenario: Inspections delivered twice move stock once
    Given the WMS delivers every inspection event twice
    When 10 returns are requested
    And the world settles
    Then stock moves match the inspected dispositions
    And every refunded return has exactly one credit memo with the policy's amount
    And no return is left stalled
