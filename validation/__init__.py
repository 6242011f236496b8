"""Validation harness for the sprint 59 relational migration (dbt project in the repository root)."""
