@broker
Feature: Warehouse facts over a message broker are stored before they are acknowledged
  Many warehouse systems publish their receipts and inspections to a message broker rather than
  calling webhooks. The layer consumes its own queue and acknowledges a message only once it has
  stored it; a message published twice is acted on once; a message that breaks the contract goes
  to its dead-letter queue, where a person can look at it and replay it, not back to the queue
  for ever. (Needs RabbitMQ on 127.0.0.1:5672: without one this feature is skipped.)

  Scenario: Duplicates are acted on once and poison is dead-lettered
    Given the WMS publishes its receipts and inspections to the message broker
    And the WMS delivers every inspection event twice
    And the WMS delivers 50% of its receipt events twice
    And 30% of inspection events from the WMS arrive malformed
    When 12 returns are requested
    And the world settles
    Then every refunded return has exactly one credit memo with the policy's amount
    And stock moves match the inspected dispositions
    And every malformed message ends in the layer's dead-letter queue
    And no return is left stalled
