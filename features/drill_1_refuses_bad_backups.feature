@drill-1 @safety @dora-12.3
Feature: Drill 1 refuses a restore it cannot trust, and loses nothing
  A restore from a missing, damaged or foreign backup, or one cut short by an outage, must
  stop with a one-line reason and leave the platform as it found it: the original database
  in place and unchanged, no scratch database left behind, the service running again.

  Background:
    Given the AKKO platform is running on the drill target
    And the Superset service is writing to the Superset metadata database
    And a recent backup of the Superset metadata database is in cold storage

  Scenario Outline: A restore facing <fault> is refused
    Given the drill faces <fault>
    And someone drops the "dashboards" table of the Superset metadata database
    When the Superset metadata database is recovered from the latest backup
    And the fault is cleared and the drill cleans up after itself
    Then the recovery is refused because "<reason>"
    And the Superset metadata database is as the incident left it
    And no scratch database is left behind
    And the Superset service is running again

    Examples:
      | fault                                     | reason                               |
      | no backup in cold storage                 | no backup of superset_metadata       |
      | a corrupt backup                          | is corrupt                           |
      | a truncated backup                        | is corrupt or truncated              |
      | a backup of another database              | does not match superset_metadata     |
      | an unreachable object store               | object store unreachable             |
      | a database server lost during the restore | PostgreSQL unreachable during restore |
      | an operator interrupting the restore      | drill interrupted                     |
