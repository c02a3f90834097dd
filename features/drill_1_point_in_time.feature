@drill-1 @dora-11.6 @dora-12.2 @dora-12.3 @dora-12.6
Feature: Drill 1 — Restore a database to just before the incident
  The playbook's Drill 1 with the WAL archiving its scope table names for PostgreSQL: someone
  drops a table in the functional data database. The newest base backup taken before the
  incident is restored on a second server, segregated from the platform's own, and the archived
  changes are replayed up to the moment the incident began. The recovered database is checked
  against its content just before the incident, then brought back by Drill 1's own swap; the
  damaged database is kept until sign-off. Recovery time runs from the declaration until the
  service is validated; data loss is the gap between the last write committed before the drop
  and the newest write that came back, shown beside what a restore of the newest dump would lose.

  Background:
    Given the AKKO platform is running on the drill target
    And the data API is writing to the functional data database
    And a base backup of the functional data database is in the WAL archive

  @class-critical-data
  Scenario: A table dropped from the functional data is restored as it was just before the drop
    Given the data API has written new data since that base backup
    When someone drops the "transactions" table of the functional data database
    And the incident is declared with its time
    And the data API is stopped
    And the changes written up to the incident are in the WAL archive
    And the database is restored on a segregated server to just before the incident
    And the restored copy holds the functional data as it was just before the incident
    And the restored copy replaces the damaged database, which is kept for sign-off
    And the data API is restarted
    Then the data API is validated on the restored database
    And the "transactions" table is back
    And the restore ran on a server segregated from the platform's own server
    And the recovery time is within the Critical data RTO
    And the data loss is within the Critical data RPO

  @class-critical-data @safety
  Scenario: A change missing from the WAL archive stops the restore, naming it and how far it got
    Given a WAL segment written after the base backup is missing from the archive
    When someone drops the "transactions" table of the functional data database
    And the incident is declared with its time
    And the database is restored on a segregated server to just before the incident, or refused
    Then the restore is refused, naming the missing WAL segment and the time it could reach
    And the functional data database is as the incident left it

  @class-critical-data @safety
  Scenario: A restore to a time before the oldest base backup is refused with the reason
    When the database is asked to be restored to a time before its oldest base backup
    Then the restore is refused because "is before the oldest base backup"
    And the functional data database is untouched
