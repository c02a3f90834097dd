@drill-1 @safety @dora-12.3
Feature: Drill 1 refuses a restore it cannot trust, and loses nothing
  A restore from a missing, damaged, empty or foreign backup, or one cut short by a failing object
  store or database server, must stop with a one-line reason and leave the platform as it found
  it: every original database in place and unchanged, no scratch database or file left behind,
  the service running again, and a second recovery without the fault succeeding.

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
    And every other database is as it was before the fault
    And no scratch database is left behind
    And no file of the drill is left behind
    And the Superset service is running again
    And a second recovery, without the fault, succeeds

    Examples:
      | fault                                     | reason                                          |
      | no backup in cold storage                 | no backup of superset_metadata                  |
      | a corrupt backup                          | is corrupt                                      |
      | a truncated backup                        | is corrupt or truncated                         |
      | a backup of another database              | does not match superset_metadata                |
      | a backup of garbage SQL                   | holds no table                                  |
      | a backup that fails half-way              | ERROR: relation "dump_broke_off_here" does not exist |
      | a backup from a newer server              | newer than the restore target's                 |
      | an empty backup from a successful job     | holds no table                                  |
      | an unreachable object store               | object store unreachable                        |
      | an object store refusing the credentials  | InvalidAccessKeyId                              |
      | an object store that stalls               | did not answer within the deadline of 2s        |
      | a backup vanishing before its download    | vanished between the listing and the download   |
      | a missing backups bucket                  | NoSuchBucket                                    |
      | a database server lost during the restore | PostgreSQL unreachable during restore           |
      | a full disk under the scratch database    | No space left on device                         |
      | a server at its connection limit          | PostgreSQL connection limit reached             |
