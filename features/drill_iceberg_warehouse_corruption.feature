@drill-iceberg @iceberg @dora-11.6 @dora-12.2 @dora-12.6 @dora-12.7
Feature: Drill — Iceberg warehouse corruption
  The playbook's Targets table names the Iceberg warehouse corruption as a Critical data scenario, and
  its Scope table protects the Iceberg tables by object replication and Iceberg snapshots. Two
  incidents are rehearsed on the table the warehouse writer commits to: a faulty job commits a change
  that deletes rows it should not, and data files of the table are lost or corrupted in the
  warehouse. The table is brought back to the last good snapshot before the incident, or its files
  come back from the replica once they are checked; when the replica lacks them too, the table goes
  back to the newest snapshot whose files are all intact. Every data file of the recovered table is
  read and compared with what was recorded before the incident. Recovery time runs from the
  declaration until the writer commits again; data loss is the gap between the writer's newest
  commit before the declaration and the newest one that came back. What the recovery replaced is
  kept until sign-off. A recovery that cannot be trusted is refused, and the table stays as the
  incident left it.

  Background:
    Given the AKKO warehouse is running on the drill target
    And the warehouse writer is committing to its table

  @class-critical-data
  Scenario: A bad write is rolled back to the last good snapshot
    When a faulty job commits a change deleting rows of the writer's table it should not
    And the incident is declared and the warehouse writer stopped
    And the table is recovered
    And every data file of the recovered table matches what was recorded before the incident
    And the warehouse writer is restarted
    Then the table is back at the last snapshot before the incident
    And what the recovery replaced is kept for sign-off
    And the recovery time is within the Critical data RTO
    And the data loss is within the Critical data RPO

  @class-critical-data
  Scenario: Lost and corrupted data files come back from the replica
    When data files of the writer's table are deleted and corrupted in the warehouse
    And the incident is declared and the warehouse writer stopped
    And the table is recovered
    And every data file of the recovered table matches what was recorded before the incident
    And the warehouse writer is restarted
    Then the damaged files came back from the replica
    And what the recovery replaced is kept for sign-off
    And the recovery time is within the Critical data RTO
    And the data loss is within the Critical data RPO

  @class-critical-data
  Scenario: Files lost in the replica too are recovered by going back past the commit that added them
    When the data files of the newest commit are lost in the warehouse and in the replica
    And the incident is declared and the warehouse writer stopped
    And the table is recovered
    And every data file of the recovered table matches what was recorded before the incident
    And the warehouse writer is restarted
    Then the table is back at the newest snapshot whose files are all intact
    And what the recovery replaced is kept for sign-off
    And the recovery time is within the Critical data RTO
    And the data loss is within the Critical data RPO

  @safety @class-critical-data
  Scenario: A bad write with no good snapshot before it is refused
    When a faulty job commits a change deleting rows of the writer's table it should not
    And the incident is declared as having begun before the oldest snapshot the table keeps
    And the recovery of the table is attempted
    Then the recovery is refused because "no good snapshot"
    And the table is as the incident left it

  @safety @class-critical-data
  Scenario: Files the replica lacks too, in every snapshot, are refused
    When the data files of the oldest snapshot are lost in the warehouse and in the replica
    And the incident is declared and the warehouse writer stopped
    And the recovery of the table is attempted
    Then the recovery is refused because "the replica lacks good copies"
    And the table is as the incident left it

  @safety @class-critical-data
  Scenario: A recovery while the catalog does not answer is refused
    When a faulty job commits a change deleting rows of the writer's table it should not
    And the incident is declared and the warehouse writer stopped
    And the catalog stops answering
    And the recovery of the table is attempted
    And the catalog answers again
    Then the recovery is refused because "unreachable"
    And the table is as the incident left it
