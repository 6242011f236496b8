{#-
    How a row of definition_groups is matched to the cache entry it comes from, whatever its
    name: (environment, group type, source type, source key), the last two kept in
    metadata.source.  Used by definition_groups (ids kept for changed groups), by the
    deletion of removed groups and by the membership diff.
-#}

{% macro group_identity_matches(group_alias, desired_alias) -%}
    {{ group_alias }}.type = {{ desired_alias }}.type
    and {{ group_alias }}.metadata -> 'source' ->> 'type' = {{ desired_alias }}.source_type
    and {{ group_alias }}.metadata -> 'source' ->> 'key' = {{ desired_alias }}.source_key
{%- endmacro %}


{% macro environment_groups_sql(groups_relation) -%}
    select
        definition_groups.id,
        definition_groups.type,
        definition_groups.name,
        definition_groups.updated_at,
        definition_groups.metadata -> 'source' ->> 'type' as source_type,
        definition_groups.metadata -> 'source' ->> 'key' as source_key
    from {{ groups_relation }} as definition_groups
    where
        definition_groups.environment = '{{ migration_environment() }}'
        and definition_groups.metadata ? 'source'
{%- endmacro %}
