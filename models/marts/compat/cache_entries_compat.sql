{#-
    The legacy cache_entries, in its shape, served from the two tables: one row per entry of
    this environment that the migration published (ETF holdings, themes, sectors, universes),
    its value rebuilt from the group's metadata and its memberships in their original order;
    and one row, value NULL, per entry it left out as a whole (an entry-level error of
    migration_exceptions), so that none is silently absent.  Named cache_entries (alias) in
    its own schema: a reader's search_path, or the name, points at it instead of the legacy
    table.  docs/design.md §13.

    The migration keeps the value's other keys (group metadata), each member's symbol,
    weight, other keys and position; it does not keep which list the members stood in nor
    how each element was spelled (a string, an object keyed symbol or ticker).  So the value
    is rebuilt in the shapes the type's member_source allows (seed cache_type_mappings), and
    the first whose checksum equals the legacy value's (metadata.source.checksum) is served:
    then the value is the legacy value exactly (is_exact_legacy_value).  Otherwise the type's
    first place, with plain string elements where a member has nothing else.  A CASE tries
    the shapes in order and stops at the first match (an ETF's holdings list first).

    The migration's rows only (its ledger, docs/design.md §10): another writer's group or
    membership is not part of any entry.

    A table with indexes on (type, key, environment) and (type, name, environment): a lookup
    of one entry is an index probe, as in the legacy table (measured at scale 10: 0.05 ms for
    XLE, 2 ms for VTI, both sides; as a view it was 2.8 ms and 105 ms).  Kept like the
    analyst tables (dbt_project.yml, macros/incremental/analytics.sql): a build recomputes
    only the entries whose group the change log names since its watermark, the entries with
    exceptions and those left out (the pre-hook, delete_stale_compat_rows, deletes them; this
    model appends every migrated group that then has no row), and all of them after a
    restore or a rollback (no watermark).  The table is never dropped, so a reader's view on
    it and its grants stay.  The members are read per group (lateral).
-#}
{%- set environment = migration_environment() -%}
{%- if execute and this.schema == var('source_schema', env_var('DBT_SOURCE_SCHEMA', 'public')) -%}
    {{ exceptions.raise_compiler_error(
        "The compatibility relation would be " ~ this.schema ~ ".cache_entries, the legacy "
        ~ "table itself: choose a target schema (DBT_SCHEMA) whose compat schema is not the "
        ~ "source schema (DBT_SOURCE_SCHEMA)."
    ) }}
{%- endif -%}
{{ config(alias='cache_entries') }}
{%- set rebuild = analytics_rebuilds_environment() -%}
{%- set forms = [none, 'symbol', 'ticker'] -%}
{#- members in their original order: metadata.position, then the symbol -#}
{%- set member_order -%}
    case
        when jsonb_typeof(group_memberships.metadata -> 'position') = 'number'
            then (group_memberships.metadata ->> 'position')::numeric
    end nulls last,
    group_memberships.symbol
{%- endset -%}
{%- set max_places = 5 -%}

with

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

ledger_groups as (

    select * from {{ ref('stg_migration_state__ledger_groups') }}
    where environment = '{{ environment }}'

),

ledger_memberships as (

    select * from {{ ref('stg_migration_state__ledger_memberships') }}

),

migrated_groups as (

    -- the migration's groups of this environment, with the entry identity each was built for
    select
        definition_groups.id as group_id,
        definition_groups.environment,
        ledger_groups.source_type,
        ledger_groups.source_key,
        definition_groups.metadata -> 'source' ->> 'name' as entry_name,
        definition_groups.metadata -> 'source' ->> 'checksum' as legacy_checksum,
        {{ legacy_value_rest('definition_groups.metadata') }} as value_rest,
        cache_type_mappings.member_source,
        definition_groups.created_at,
        definition_groups.updated_at
    from {{ ref('definition_groups') }} as definition_groups
    inner join ledger_groups
        on definition_groups.id = ledger_groups.group_id
    inner join cache_type_mappings
        on ledger_groups.source_type = cache_type_mappings.cache_type
    where
        definition_groups.environment = '{{ environment }}'
    {%- if not rebuild %}
        -- the groups whose row the pre-hook deleted, or that are new
        and not exists (
            select from {{ this }} as served where served.group_id = definition_groups.id
        )
    {%- endif %}

),

member_places as (

    -- the places the type's members may be in, in the mapping's order ('(value)' only for a
    -- value with nothing but its list), and the group's members in their original order
    -- (metadata.position) in each element spelling the value may have used: read per group
    -- (lateral), so that a lookup of one entry reads only its group's members
    select
        migrated_groups.*,
        member_lists.members_plain,
        member_lists.members_symbol,
        member_lists.members_ticker,
        {%- for place_number in range(1, max_places + 1) %}
            case
                when
                    split_part(migrated_groups.member_source, '+', {{ place_number }}) = '(value)'
                    and migrated_groups.value_rest <> '{}'::jsonb
                    then ''
                else split_part(migrated_groups.member_source, '+', {{ place_number }})
            end as place_{{ place_number }},
        {%- endfor %}
        migrated_groups.member_source = 'stock_metadata' as is_sector
    from migrated_groups
    cross join lateral (
        select
            coalesce(
                jsonb_agg(
                    {{ member_element(
                        'group_memberships.symbol',
                        'group_memberships.weight',
                        member_element_attributes('group_memberships.metadata'),
                        none,
                    ) | indent(20) }}
                    order by {{ member_order }}
                ),
                '[]'::jsonb
            ) as members_plain,
            coalesce(
                jsonb_agg(
                    {{ member_element(
                        'group_memberships.symbol',
                        'group_memberships.weight',
                        member_element_attributes('group_memberships.metadata'),
                        'symbol',
                    ) | indent(20) }}
                    order by {{ member_order }}
                ),
                '[]'::jsonb
            ) as members_symbol,
            coalesce(
                jsonb_agg(
                    {{ member_element(
                        'group_memberships.symbol',
                        'group_memberships.weight',
                        member_element_attributes('group_memberships.metadata'),
                        'ticker',
                    ) | indent(20) }}
                    order by {{ member_order }}
                ),
                '[]'::jsonb
            ) as members_ticker
        from {{ ref('group_memberships') }} as group_memberships
        where
            group_memberships.group_id = migrated_groups.group_id
            -- the migration's rows (its ledger): one probe of the ledger's key per member
            and coalesce((
                select true from ledger_memberships
                where ledger_memberships.membership_id = group_memberships.id
            ), false)
    ) as member_lists

),

rebuilt_values as (

    select
        *,
        case
            -- a sector's value lists no members (they come from stock_metadata)
            when is_sector then value_rest
            {%- for place_number in range(1, max_places + 1) %}
                {%- for form in forms %}
            {%- set candidate = value_with_members(
                'value_rest', 'place_' ~ place_number, 'members_' ~ (form or 'plain')
            ) %}
                    when
                        place_{{ place_number }} <> ''
                        and md5(({{ candidate }})::text) = legacy_checksum
                        then {{ candidate }}
                {%- endfor %}
            {%- endfor %}
            else {{ value_with_members(
                'value_rest',
                "case when place_1 <> '' then place_1 else place_2 end",
                'members_plain',
            ) }}
        end as value
    from member_places

),

migration_exceptions as (

    select * from {{ ref('migration_exceptions') }}
    where cache_type in (select cache_type_mappings.cache_type from cache_type_mappings)

),

migrated_entries as (

    select
        rebuilt_values.source_type::varchar(50) as type,
        rebuilt_values.entry_name::varchar(100) as name,
        rebuilt_values.source_key::varchar(100) as key,
        rebuilt_values.value,
        rebuilt_values.environment::varchar(10) as environment,
        (rebuilt_values.created_at at time zone 'UTC') as created_at,
        (rebuilt_values.updated_at at time zone 'UTC') as updated_at,
        rebuilt_values.group_id,
        case
            when entry_exceptions.has_left_out_elements then 'migrated_without_some_elements'
            when entry_exceptions.exception_list is not null then 'migrated_with_corrections'
            else 'migrated'
        end::text as migration_status,
        md5(rebuilt_values.value::text) = rebuilt_values.legacy_checksum as is_exact_legacy_value,
        coalesce(entry_exceptions.exception_list, '[]'::jsonb) as migration_exceptions
    from rebuilt_values
    cross join lateral (
        -- what the published entry was migrated with: left-out elements and corrections (an
        -- entry left out as a whole under the same key, a superseded version, not included)
        select
            jsonb_agg(
                jsonb_strip_nulls(jsonb_build_object(
                    'position', published_exceptions.element_position,
                    'element', published_exceptions.element,
                    'symbol', published_exceptions.symbol,
                    'reason', published_exceptions.reason,
                    'severity', published_exceptions.severity,
                    'detail', published_exceptions.detail
                ))
                order by published_exceptions.element_position nulls first, published_exceptions.reason
            ) as exception_list,
            bool_or(published_exceptions.severity = 'error') as has_left_out_elements
        from migration_exceptions as published_exceptions
        where
            published_exceptions.cache_type = rebuilt_values.source_type
            and published_exceptions.entry_key = rebuilt_values.source_key
            and not exists (
                select from migration_exceptions as entry_errors
                where
                    entry_errors.cache_entry_id = published_exceptions.cache_entry_id
                    and entry_errors.element_position is null
                    and entry_errors.severity = 'error'
            )
    ) as entry_exceptions

),

not_migrated_entries as (

    -- entries left out as a whole: no group stands for them
    select
        cache_type::varchar(50) as type,
        entry_name::varchar(100) as name,
        entry_key::varchar(100) as key,
        null::jsonb as value,
        raw_environment::varchar(10) as environment,
        null::timestamptz as created_at,
        null::timestamptz as updated_at,
        null::integer as group_id,
        'not_migrated'::text as migration_status,
        false as is_exact_legacy_value,
        jsonb_agg(
            jsonb_build_object('reason', reason, 'severity', severity, 'detail', detail)
            order by reason
        ) as migration_exceptions
    from migration_exceptions
    where element_position is null and severity = 'error'
    group by cache_entry_id, cache_type, entry_key, entry_name, raw_environment

),

final as (

    select * from migrated_entries
    union all
    select * from not_migrated_entries

)

select * from final
