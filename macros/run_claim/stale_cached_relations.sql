{% macro stale_cached_relations() %}
    {#-
        The relations of this project whose existence in dbt's relation cache, read before
        the on-run-start hooks, no longer matches the catalog: another run of this
        environment that finished or stopped in between changed them.  Building on such a
        cache fails half-way ("relation ... already exists"), so the run stops first.
    -#}
    {%- set nodes = graph.nodes.values()
        | selectattr('resource_type', 'in', ['model', 'seed', 'snapshot'])
        | rejectattr('config.materialized', 'equalto', 'ephemeral')
        | list -%}
    {%- set schemas = [] -%}
    {%- for schema in nodes | map(attribute='schema') | unique -%}
        {%- do schemas.append(sql_literal(schema)) -%}
    {%- endfor -%}
    {%- set catalog = run_query(
        "select n.nspname || '.' || c.relname "
        ~ "from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
        ~ "where c.relkind in ('r', 'p', 'v', 'm') and n.nspname in ("
        ~ schemas | join(", ") ~ ")"
    ) -%}
    {%- set present = catalog.columns[0].values() | list -%}
    {%- set stale = [] -%}
    {%- for node in nodes -%}
        {%- set cached = adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias
        ) -%}
        {%- if (cached is none) == ((node.schema ~ '.' ~ node.alias) in present) -%}
            {%- do stale.append(node.schema ~ '.' ~ node.alias) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(stale) }}
{% endmacro %}
