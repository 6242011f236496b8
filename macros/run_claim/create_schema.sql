{% macro postgres__create_schema(relation) -%}
    {#-
        dbt's own, serialised: dbt creates missing schemas before any hook, and two runs
        creating one schema at once make the second fail on pg_namespace's unique index
        (CREATE SCHEMA IF NOT EXISTS checks before it inserts).  The transaction lock makes
        the second wait for the first's commit, and then find the schema.
        A build whose legacy table is missing stops here, before the first schema is created
        (macros/run_claim/require_legacy_source.sql).
    -#}
    {%- set missing = legacy_source_missing() -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(missing) }}
    {%- endif -%}
    {%- if relation.database -%}
        {{ adapter.verify_database(relation.database) }}
    {%- endif -%}
    {%- call statement('create_schema') -%}
        select pg_advisory_xact_lock(hashtext('sprint59_migration.create_schema'));
        create schema if not exists {{ relation.without_identifier().include(database=False) }}
    {%- endcall -%}
{% endmacro %}
