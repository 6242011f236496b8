"""Validation harness of the sprint 59 relational migration (the dbt project is the repo root)."""
