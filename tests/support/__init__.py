"""Helpers shared by the test modules: servers, the dbt runner, legacy caches, oracles."""
