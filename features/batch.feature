@batch
Feature: Warehouse facts in batch files are booked once, and a file cut short not at all
  Older warehouse systems hand over their day as a flat file: a CSV with a header, a row per
  receipt or inspection and a trailer with the record count, dropped on an SFTP server. The layer
  checks a file whole before it books anything: a file cut short (no trailer, or a count that does
  not match) is moved to rejected and none of its rows is booked; its facts come again in the next
  export. A file exported twice books nothing twice.

  Scenario: A cut file is refused whole and a resent one books nothing twice
    Given the WMS exports its receipts and inspections in batch files every 4 hours
    And 40% of the WMS's batch files are cut short
    And 40% of the WMS's batch files are exported twice
    When 12 returns are requested
    And the world settles
    Then every batch file cut short is refused whole
    And every refunded return has exactly one credit memo with the policy's amount
    And stock moves match the inspected dispositions
    And no return is left stalled
