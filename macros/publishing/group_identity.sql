{#-
    How a group the migration owns is matched to the cache entry it comes from, whatever its
    name: (environment, group type, source type, source key), as the ledger recorded it when
    the group was inserted (macros/run_state/ledger.sql) -- never from metadata.source, which
    any writer can set.  Used by definition_groups (ids kept for changed groups), by the
    deletion of removed groups and by the membership diff.
-#}

{% macro group_identity_matches(group_alias, desired_alias) -%}
    {#- group_alias: rows of owned_groups_sql. -#}
    {{ group_alias }}.type = {{ desired_alias }}.type
    and {{ group_alias }}.source_type = {{ desired_alias }}.source_type
    and {{ group_alias }}.source_key = {{ desired_alias }}.source_key
{%- endmacro %}


{% macro published_groups_relation() %}
    {#- definition_groups for the models upstream of it, which cannot ref it (a cycle); none
        before its first build.  A unit test overrides it with '' (no table). -#}
    {{ return(adapter.get_relation(target.database, target.schema, 'definition_groups')) }}
{% endmacro %}


{% macro published_tables_exist() %}
    {#- Whether definition_groups and group_memberships exist, for the change models that
        read them as a source: before a first build they do not, and a view cannot name a
        missing table.  True while parsing, so that dbt sees the models' refs and sources;
        their unit tests override it with true. -#}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {{ return(
        adapter.get_relation(target.database, target.schema, 'definition_groups') is not none
        and adapter.get_relation(target.database, target.schema, 'group_memberships') is not none
    ) }}
{% endmacro %}
