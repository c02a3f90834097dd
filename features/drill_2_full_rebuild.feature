@drill-2 @class-full-cluster-rebuild @dora-11.6 @dora-12.2 @dora-12.3 @dora-12.6
Feature: Drill 2 — Restore the entire platform
  The playbook's Drill 2: the whole platform is lost (a cloud region down). A new, empty platform
  is provisioned and rebuilt from what survives off-site: every database from its latest backup,
  replayed in parallel and checked against what the backup recorded; the object data from its
  replica, checked object by object; then every service writing again. The old database server's
  data is kept until sign-off. Recovery time runs from the declaration until every service is
  validated; data loss is, per database, the gap between its last write before the disaster and
  its newest write that came back. Steps a target cannot run are shown as not applicable, with why.

  Scenario: The whole platform is rebuilt from its off-site backups
    Given a whole AKKO platform is running on a drill target of its own
    And fresh backups of every database and a mirror of the object data are off-site
    And every service has written new data since those backups
    When the whole platform is lost
    And the incident is declared
    And a new, empty platform is provisioned
    And the platform's namespace is restored from the newest Velero backup
    And every database is replayed from its latest backup, in parallel
    And the object data is restored from its replica
    And every service is restarted on the new platform
    And DNS is re-pointed to the new platform
    Then every service is validated on the new platform
    And every database matches what its backup recorded
    And every object matches its replica
    And the recovery time is within the Full cluster rebuild RTO
    And the data loss is within the Full cluster rebuild RPO
    And the parallel replay is timed against a sequential replay of the same backups
    When the database backup jobs run on the new platform
    Then the latest dump of every database is fresh
    And every database is within the RTO of its own class and the RPO its backup schedule allows

  @safety
  Scenario: One corrupt backup among many does not stop the others from coming back
    Given a whole AKKO platform is running on a drill target of its own
    And fresh backups of every database and a mirror of the object data are off-site
    And the latest backup of the airflow database is corrupt
    When the whole platform is lost
    And the incident is declared
    And a new, empty platform is provisioned
    And every database is replayed from its latest backup, in parallel
    And every service is restarted on the new platform
    Then every service whose database came back is validated on the new platform
    And the rebuild fails, naming airflow because "is corrupt"
    And every other database matches what its backup recorded

  @tabletop @dora-14
  Scenario: The decision to rebuild and the communication to management are attested
    Then the decision to rebuild the whole platform is attested
    And the communication to management during the rebuild is attested
