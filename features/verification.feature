@verification @dora-11.6 @dora-12.1
Feature: Verification — the playbook's verification commands, run as checks
  The playbook ends with four verification commands: backup jobs are green, the latest
  PostgreSQL dump is recent, Velero has a recent successful backup, and the audit trail is
  immutable. Each is run here against the drill target, and judged by the figures of the
  policy file: a job's own schedule, a database's backup job, the audit lock's mode and
  retention. A check the target cannot run is reported as not applicable, with the reason.
  Each check reaches only what it judges: a missing database is one finding, in its own scenario.
  On a live platform the checks write nothing unless probes are allowed: the audit lock is then
  read instead of tried, and the result says it is inconclusive until a probe record proves it.
  A proof that rests on an emulated object store is inconclusive, never passed.

  Background:
    Given the drill target is ready to be checked

  Scenario Outline: The <job> backup job ran successfully within its schedule
    When the platform is asked for the last runs of the "<job>" backup job
    Then its last run succeeded within its schedule interval plus the tolerance

    Examples:
      | job                        |
      | akko-pg-backup             |
      | akko-pg-data-backup        |
      | akko-minio-replicate       |
      | akko-keycloak-realm-export |
      | akko-velero-ns-akko        |

  Scenario: Every database of the policy is on the database server
    When the database server is asked for the databases of the policy
    Then every one of them is there

  Scenario: The latest dump of every database is younger than its backup job allows
    When the object store is listed for the latest dump of every database in the policy
    Then every database has a dump younger than its backup interval plus the tolerance

  @live-only
  Scenario: The newest completed Velero backup is younger than its schedule allows
    When the platform is asked for its Velero backups
    Then the newest completed one is younger than the Velero schedule interval plus the tolerance

  @worm @dora-12.3
  Scenario: The audit bucket is locked in the policy's mode for at least the policy's retention
    When the Object Lock configuration of the audit bucket is read
    Then the lock has the policy's mode and at least the policy's retention

  @worm @dora-12.3
  Scenario: A locked audit record cannot be deleted
    Given a probe record is written to the audit bucket under its lock
    When someone tries to delete the locked version of the probe record
    Then the object store refuses the deletion

  @worm @dora-12.3
  Scenario: The retention of a locked audit record cannot be shortened
    Given a probe record is written to the audit bucket under its lock
    When someone tries to shorten the retention of the probe record
    Then the object store refuses to shorten it

  @iceberg @class-critical-data
  Scenario: Every Iceberg table has a current snapshot younger than its class RPO
    When the catalog is asked for the current snapshot of every Iceberg table
    Then every table's current snapshot is younger than the RPO of its class

  @iceberg @class-critical-data
  Scenario: Every file of the current Iceberg snapshots is in the warehouse and in the replica
    When the manifests of every current Iceberg snapshot are read for the files they reference
    Then each file is in the warehouse and in the replica with the size its manifest records

  @iceberg @class-critical-data
  Scenario: Iceberg snapshot retention keeps at least the window the RPO needs
    When the snapshot retention of every Iceberg table is read
    Then it keeps snapshots for at least the RPO of its class and what the policy declares
  @dora-12.2
  Scenario: The newest archived WAL segment is younger than the archive timeout allows
    When the WAL archive is listed for its newest segment
    Then it is younger than the archive timeout plus the tolerance

  @dora-12.2
  Scenario: The WAL archive has no gap from the newest base backup to now
    When the WAL archive is listed from its newest base backup
    Then every change from that base backup to the newest archived one is there

  @dora-12.2
  Scenario: Failures to archive WAL are visible on the database server
    When the database server is asked how its WAL archiving went
    Then no archiving failure is left unresolved
