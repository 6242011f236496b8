{% macro generate_schema_name(custom_schema_name, node) -%}
    {#-
        The two contract tables (no custom schema) live in the target schema, shared by every
        environment.  Staging views, intermediate tables and seeds get one schema per
        environment (e.g. public_intermediate_prod), so builds of two environments never
        race on the same working relations.
    -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}_{{ migration_environment() | lower }}
    {%- endif -%}
{%- endmacro %}
