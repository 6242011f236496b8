{% macro id_sequence(name, schema=none) -%}
    {#-
        A contract table's id sequence (definition_groups_id_seq, group_memberships_id_seq),
        qualified by its schema (default the target schema) and quoted: DBT_SCHEMA=Mixed_Case
        is a schema of that name, not mixed_case.
    -#}
    {{ adapter.quote(schema if schema is not none else target.schema) }}.{{ adapter.quote(name) }}
{%- endmacro %}
