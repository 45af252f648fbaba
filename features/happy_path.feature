@happy_path
Feature: A return goes through, whatever the warehouse decides
  A customer asks for a return; the integration layer authorizes it, the parcel comes back,
  the warehouse grades it and decides where each unit goes; the ERP is told once, and the
  customer is refunded once, or sent a replacement.

  Background:
    Given every customer asks for a refund

  Scenario Outline: Units sent to <disposition> end in <destination>
    Given the warehouse sends every unit to <disposition>
    When 8 returns are requested
    And the world settles
    Then every return is closed
    And every returned unit ends in <destination>
    And stock moves match the inspected dispositions
    And every unit returned to a vendor is claimed from it once
    And every refunded return has exactly one credit memo with the policy's amount

    Examples:
      | disposition | destination      |
      | restock     | available stock  |
      | refurbish   | refurbish stock  |
      | scrap       | scrap stock      |
      | quarantine  | quarantine stock |
      | the vendor  | a supplier claim |

  Scenario: An exchange ships a replacement instead of a refund
    Given every customer asks for an exchange
    When 8 returns are requested
    And the world settles
    Then every return is closed
    And every inspected exchange gets exactly one replacement order
    And no exchange gets a credit memo
    And stock moves match the inspected dispositions
