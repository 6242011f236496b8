{% macro postgres__create_schema(relation) -%}
    {#-
        dbt's own, serialised: dbt creates missing schemas before any hook, and two runs
        creating one schema at once make the second fail on pg_namespace's unique index
        (CREATE SCHEMA IF NOT EXISTS checks before it inserts).  The transaction lock makes
        the second wait for the first's commit, and then find the schema.
    -#}
    {%- if relation.database -%}
        {{ adapter.verify_database(relation.database) }}
    {%- endif -%}
    {%- call statement('create_schema') -%}
        select pg_advisory_xact_lock(hashtext('sprint59_migration.create_schema'));
        create schema if not exists {{ relation.without_identifier().include(database=False) }}
    {%- endcall -%}
{% endmacro %}
