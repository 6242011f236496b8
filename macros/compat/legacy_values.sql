{#-
    The legacy value of a migrated entry, rebuilt from the two tables (the compatibility
    relation, models/marts/compat/), and the reading both sides of the round trip are compared
    by (tests/dbt/assert_compat_values_round_trip.sql, docs/design.md §13).
-#}

{% macro legacy_value_rest(metadata) -%}
    {#-
        A group's metadata minus its provenance: the legacy value minus its member lists
        (int_definition_groups keeps the value's own `source` as `legacy_source`, or all
        three of its own keys under `legacy_fields` when the value also had one of those).
    -#}
    case
        when jsonb_typeof({{ metadata }}) <> 'object' then '{}'::jsonb
        when jsonb_typeof({{ metadata }} -> 'legacy_fields') = 'object'
            then ({{ metadata }} - 'source' - 'legacy_fields') || ({{ metadata }} -> 'legacy_fields')
        when {{ metadata }} ? 'legacy_source'
            then ({{ metadata }} - 'source' - 'legacy_source')
            || jsonb_build_object('source', {{ metadata }} -> 'legacy_source')
        else {{ metadata }} - 'source'
    end
{%- endmacro %}


{% macro member_element_attributes(metadata) -%}
    {#-
        The element's own keys a membership's metadata keeps: all but the computed
        `position`; keys the element had under those names are nested under `element`.
    -#}
    case
        when jsonb_typeof({{ metadata }}) <> 'object' then '{}'::jsonb
        else ({{ metadata }} - 'position' - 'element')
            || case
                when jsonb_typeof({{ metadata }} -> 'element') = 'object'
                    then {{ metadata }} -> 'element'
                else '{}'::jsonb
            end
    end
{%- endmacro %}


{% macro member_element(symbol, weight, attributes, symbol_key) -%}
    {#-
        A membership as a legacy list element: symbol_key none gives a plain string when the
        member has no weight and no other keys, else an object keyed `symbol`; 'symbol' or
        'ticker' always an object keyed so.
    -#}
    {%- if symbol_key is none %}
    case
        when {{ weight }} is null and {{ attributes }} = '{}'::jsonb then to_jsonb({{ symbol }}::text)
        else jsonb_build_object('symbol', {{ symbol }}) || {{ attributes }}
            || case
                when {{ weight }} is not null then jsonb_build_object('weight', {{ weight }})
                else '{}'::jsonb
            end
    end
    {%- else %}
    jsonb_build_object('{{ symbol_key }}', {{ symbol }}) || {{ attributes }}
    || case
        when {{ weight }} is not null then jsonb_build_object('weight', {{ weight }})
        else '{}'::jsonb
    end
    {%- endif %}
{%- endmacro %}


{% macro value_with_members(rest, place, members) -%}
    {#- The value with its member list at `place`: '(value)' is the list itself. -#}
    case
        when {{ place }} = '(value)' then {{ members }}
        else {{ rest }} || jsonb_build_object({{ place }}, {{ members }})
    end
{%- endmacro %}


{% macro grant_schema_usage() %}
    {#-
        post-hook of the compatibility relation: the roles its SELECT is granted to (the
        analyst role and the reader roles, those that exist) get USAGE on its schema, which
        no other hook grants; only what is missing, so a run that finds it in place changes
        nothing.
    -#}
    {%- if not execute -%}
        {{ return('select 1') }}
    {%- endif -%}
    {%- set roles = [] -%}
    {%- for role in [analyst_role()] + reader_roles() if role and role not in roles -%}
        {%- do roles.append(role) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for role in roles -%}
        {%- set lacking = run_query(
            "select not has_schema_privilege(r.rolname, n.oid, 'usage')"
            ~ " from pg_roles as r cross join pg_namespace as n"
            ~ " where r.rolname = " ~ sql_literal(role) ~ " and n.nspname = " ~ sql_literal(this.schema)
        ).rows -%}
        {%- if lacking and lacking[0][0] -%}
            {%- do statements.append(
                "grant usage on schema " ~ adapter.quote(this.schema) ~ " to " ~ adapter.quote(role)
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ missing_grants_block(
        statements,
        'every role has USAGE on the schema, or none exists',
        "compat grants: % (the schema's owner can grant USAGE on it)",
    ) }}
{% endmacro %}


{% macro delete_stale_compat_rows() %}
    {#-
        Pre-hook of the compatibility relation: delete the rows this run recomputes (the
        model appends every migrated group without a row): those of the groups the change
        log names since the watermark, or that are gone, every row with exceptions or left
        out (their reasons are recomputed each run), or all when it rebuilds.
    -#}
    {%- if not is_incremental() -%}
        select 1 /* first build */
    {%- elif analytics_rebuilds_environment() -%}
        delete from {{ this }}
    {%- else -%}
        delete from {{ this }} as served
        where
            served.migration_status <> 'migrated'
            or served.group_id in ({{ changed_group_ids_sql() }})
            or not exists (
                select from {{ ref('definition_groups') }} as definition_groups
                where definition_groups.id = served.group_id
            )
    {%- endif -%}
{% endmacro %}
