@drill-1 @dora-11.6 @dora-12.2 @dora-12.3
Feature: Drill 1 — Restore a single PostgreSQL database
  The playbook's Drill 1: someone dropped a table in the Superset metadata database.
  The latest backup is restored into a separate scratch database, checked against what the
  backup recorded when it was taken, and only then put in place. The damaged database is kept
  until sign-off. Recovery time runs from the moment the incident is declared until the
  service is validated; data loss is the gap between the last write before the incident and
  the newest write that came back.

  Background:
    Given the AKKO platform is running on the drill target
    And the Superset service is writing to the Superset metadata database

  @class-control-plane
  Scenario: A dropped table in the Superset metadata is restored from the latest backup
    Given a recent backup of the Superset metadata database is in cold storage
    And the Superset service has written new data since that backup
    When someone drops the "dashboards" table of the Superset metadata database
    And the incident is declared
    And the Superset service is stopped
    And the latest backup is pulled from cold storage and checked
    And the backup is restored into a separate scratch database
    And the scratch database matches what the backup recorded
    And the scratch database replaces the damaged one, which is kept for sign-off
    And the Superset service is restarted
    Then the Superset service is validated on the restored database
    And the "dashboards" table is back
    And the recovery time is within the Control plane RTO
    And the data loss is within the Control plane RPO

  @class-control-plane
  Scenario: The latest backup is restored and checked on a server segregated from the platform
    Given a recent backup of the Superset metadata database is in cold storage
    When the latest backup is restored on a segregated server and checked against what it recorded
    Then the restored copy is segregated from the platform's own server
    And the platform's own Superset metadata database was not touched
