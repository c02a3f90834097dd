@drill-3 @dora-11.6
Feature: Drill 3 — Ransomware / compromise
  The playbook's Drill 3: an attacker obtained the credentials of the platform administrator
  named in the policy and deleted tables. The phases run in the playbook's order, each with its
  own evidence: contain, preserve the evidence before anything is eradicated, identify the
  attacker's actions in the audit window, eradicate, recover with Drill 1, prove the audit trail
  cannot be tampered with, and file the lessons learned. Decisions and communication are made by
  people: they are attested, not executed.

  @class-control-plane @dora-12.3
  Scenario: A compromised administrator is contained, investigated and recovered from
    Given the AKKO platform is running on the drill target
    And the Superset service is writing to the Superset metadata database
    And a recent backup of the Superset metadata database is in cold storage
    And an attacker holds the credentials of the compromised identity
    And the attacker drops the "dashboards" table of the Superset metadata database
    When the compromised identity is suspended and its credentials rotated
    Then the attacker's credentials no longer work
    When the audit trail and the restore receipts are preserved in an evidence bundle
    Then every file of the evidence bundle has its sha256 recorded
    When the compromised identity's actions in the audit window are listed from the audit trail
    Then the dropping of the "dashboards" table is among them
    And the identity provider's log of the compromised identity shows the dropping of the "dashboards" table
    When the attacker's service accounts and secrets are removed
    And the Superset metadata database is recovered with Drill 1
    Then the "dashboards" table of the Superset metadata database is back
    And the recovery time is within the Control plane RTO
    And the data loss is within the Control plane RPO

  @worm @dora-12.2
  Scenario: The compromised identity cannot delete the audit trail
    Given the audit trail holds actions of the compromised identity
    When the compromised identity tries to delete every audit object version and to overwrite one
    Then every deletion is refused
    And every audit object version that existed before is still there, byte for byte

  @worm @dora-12.2
  Scenario: The compromised identity cannot shorten the retention of the audit trail
    Given the audit trail holds actions of the compromised identity
    When the compromised identity tries to shorten the retention of every audit object version
    Then every attempt to shorten the retention is refused

  @safety
  Scenario: An identity that does not exist cannot be contained
    When the identity "akko-ghost" is suspended and its credentials rotated
    Then the containment is refused because "does not exist"

  @tabletop @dora-14
  Scenario: The decisions and the crisis communication are attested
    Then who decided to contain the identity and to recover is attested
    And the communication to management is attested
    And the crisis communication to clients and authorities is attested

  @dora-13.1
  Scenario: The lessons learned are filed as an ADR
    When an ADR is written from this run's Drill 3 evidence
    Then the ADR has every Drill 3 scenario of this run with its outcome
    And the ADR names every Drill 3 failure with its reason

  @class-control-plane @dora-12.3
  Scenario: The identity provider is rebuilt from its realm export without the stolen credentials
    Given an attacker holds the credentials of the compromised identity
    When the compromised identity is suspended and its credentials rotated
    And the realm is exported and the export restored into a fresh identity provider
    Then a user of the realm logs in on the fresh identity provider
    And the attacker's credentials do not work on the fresh identity provider
