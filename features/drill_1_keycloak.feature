@drill-1 @dora-11.6 @dora-12.3
Feature: Drill 1 on the Keycloak database, under the running identity provider
  The playbook's Drill 1 applied to Keycloak's own database (scope: "Keycloak realm + users", JSON
  export + DB dump). Keycloak keeps running while its database is restored into a scratch database,
  checked, and swapped in. The service counts as validated only once a user of the realm logs in again
  through Keycloak itself, on the restored database. A target whose identity provider is not Keycloak
  cannot run this drill: the scenario says so and why.

  @class-control-plane
  Scenario: The Keycloak database is restored under the running Keycloak and logins work again
    Given the AKKO platform is running on the drill target
    And Keycloak serves the identity provider of the drill target
    And a recent backup of the Keycloak database is in cold storage
    When someone drops the "credential" table of the Keycloak database
    And the Keycloak database is recovered with Drill 1 while Keycloak keeps running
    Then a user of the realm logs in through Keycloak on the restored database
    And the "credential" table of the Keycloak database is back
    And the recovery time is within the Control plane RTO
