@schedule @dora-12.1
Feature: Backup schedule — every job of the schedule table runs and keeps what the policy says
  The playbook's Backup schedule table names five jobs, each with a schedule and a retention.
  On the platform each job must be scheduled exactly as written (compared by the times it
  fires, not by its text), and the object store must keep its backups at least as long as
  the policy's cold retention, by lifecycle rules or an Object Lock, wherever the store can.
  A suspended job, or a paused Velero schedule, is not scheduled; a schedule read in another time
  zone fires at other times.

  Background:
    Given the drill target is ready to be checked

  Scenario Outline: The <job> job is scheduled as the policy says
    Given the "<job>" job of the policy's backup schedule
    Then the platform schedules it as the policy says

    Examples:
      | job                        |
      | akko-pg-backup             |
      | akko-pg-data-backup        |
      | akko-minio-replicate       |
      | akko-keycloak-realm-export |
      | akko-velero-ns-akko        |

  Scenario Outline: Backups of the <job> job are kept as long as the policy says
    Given the "<job>" job of the policy's backup schedule
    Then the object store enforces its retention

    Examples:
      | job                        |
      | akko-pg-backup             |
      | akko-pg-data-backup        |
      | akko-keycloak-realm-export |
      | akko-velero-ns-akko        |

  @worm @dora-12.3
  Scenario: Mirrored object data is kept under the policy's lock for the policy's retention
    Given the "akko-minio-replicate" job of the policy's backup schedule
    Then the object store enforces its retention
