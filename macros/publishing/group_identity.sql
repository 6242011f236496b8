{#-
    How a group the migration owns is matched to the cache entry it comes from, whatever its
    name: (environment, group type, source type, source key), as the ledger recorded it when
    the group was inserted (macros/run_state/ledger.sql) -- never from metadata.source, which
    any writer can set.  Used by definition_groups (ids kept for changed groups), by the
    deletion of removed groups and by the membership diff.
-#}

{% macro group_identity_matches(group_alias, desired_alias) -%}
    {#- group_alias: rows of owned_groups_sql (or environment_groups_sql). -#}
    {{ group_alias }}.type = {{ desired_alias }}.type
    and {{ group_alias }}.source_type = {{ desired_alias }}.source_type
    and {{ group_alias }}.source_key = {{ desired_alias }}.source_key
{%- endmacro %}


{% macro environment_groups_sql(groups_relation) -%}
    {#- This environment's groups that the migration owns and that are in the table. -#}
    select
        owned_groups.id,
        owned_groups.type,
        owned_groups.name,
        owned_groups.updated_at,
        owned_groups.source_type,
        owned_groups.source_key
    from ({{ owned_groups_sql(groups_relation) }}) as owned_groups
    where owned_groups.is_present
{%- endmacro %}


{% macro published_groups_relation() %}
    {#- definition_groups for the models upstream of it, which cannot ref it (a cycle); none
        before its first build.  A unit test overrides it with '' (no table). -#}
    {{ return(adapter.get_relation(target.database, target.schema, 'definition_groups')) }}
{% endmacro %}
