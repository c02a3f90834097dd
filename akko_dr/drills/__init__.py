"""Drill logic, one module per playbook drill."""
