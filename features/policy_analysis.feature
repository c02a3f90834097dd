@policy-analysis @dora-12.6
Feature: Policy analysis — the playbook's own tables agree with each other
  Before anything runs, the policy itself is read as an auditor would: each class's recovery
  point objective (Targets table) against how often the jobs protecting it run (Backup
  schedule), each job's retention against the time between two quarterly drills, and each
  component of the Scope table against the jobs that protect it.

  Scenario: Critical data is backed up at least as often as its RPO
    Given the Critical data class of the policy
    Then every component of the class is backed up at least as often as the class RPO

  Scenario: Control plane is backed up at least as often as its RPO
    Given the Control plane class of the policy
    Then every component of the class is backed up at least as often as the class RPO

  Scenario: Observability is backed up at least as often as its RPO
    Given the Observability class of the policy
    Then every component of the class is backed up at least as often as the class RPO

  Scenario: Full cluster rebuild is backed up at least as often as its RPO
    Given the Full cluster rebuild class of the policy
    Then every component of the class is backed up at least as often as the class RPO

  Scenario: Every job keeps its backups for at least the time between two quarterly drills
    Then every backup job's retention covers the interval between quarterly drills

  Scenario: Every component in scope is protected by a backup job, and every job by a scope row
    Then every scope row maps to a backup job and every job to a scope row
