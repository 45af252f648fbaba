@lost_responses
Feature: A write whose answer was lost is not done twice
  The ERP commits a document, then the response is lost in a timeout. Only a client that
  retries with the same Idempotency-Key gets the first document back instead of a second one.

  Scenario: RMAs and credit memos survive lost responses
    Given the ERP commits 30% of return authorizations, then loses the response
    And the ERP commits 30% of credit memos, then loses the response
    When 12 returns are requested
    And the world settles
    Then every write carries an Idempotency-Key
    And every approved return has exactly one RMA
    And every refunded return has exactly one credit memo with the policy's amount
