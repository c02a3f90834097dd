@scope @dora-12.1
Feature: Scope — every stateful component has a backup that exists, is not empty and is fresh
  The playbook's Scope table lists the stateful components and how each is backed up. For each
  component, the artefact of every job that protects it is looked for on the drill target: a
  PostgreSQL dump per database, a canary object that reaches the replica within the class's
  recovery point objective, a recent completed Velero backup, a Keycloak realm export. A
  component no check can judge is reported as uncovered, never passed; a component the target
  does not run is reported as not applicable, with the reason. On a live platform the canary is
  written only when probes are allowed, and waits no longer than the probe deadline; otherwise the
  replica's newest object is compared with the newest object of the buckets it mirrors.

  Background:
    Given the drill target is ready to be checked

  Scenario Outline: <component> has a fresh backup artefact
    When the backup artefacts of "<component>" are looked for on the drill target
    Then each of them exists, is not empty and is fresh

    Examples:
      | component                                              |
      | PostgreSQL (Keycloak/Airflow/OM/Superset/MLflow/Polaris) |
      | PostgreSQL Data (functional)                           |
      | Iceberg tables (object storage warehouse)              |
      | object storage object data                             |
      | Keycloak realm + users                                 |
      | Trino catalogs (dynamic)                               |
      | ADEN query cache + receipts                            |
      | Prometheus / VictoriaMetrics TSDB                      |
      | logs layer audit data                                  |
      | Helm state (releases)                                  |

  Scenario: Every component of the policy's scope table is checked by this feature
    When the components of the policy's scope table are compared with the components above
    Then none of them is left unchecked
