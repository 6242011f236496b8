{#-
    The round trip (docs/design.md §13): the compatibility relation (cache_entries_compat)
    gives back every entry of this environment the migration read.

    - Every published entry has its row, and for it: the value minus its member lists equals
      the legacy value minus its member lists, as JSON; and its members, read as the
      migration reads an element ([symbol, weight, other keys]), in order, equal the legacy
      elements in order minus exactly the positions migration_exceptions records as errors
      for the entry, and minus an element another writer's membership of the group stands
      for (§10: the migration writes no second row).  A sector's value lists no members:
      it is compared whole.
    - Every entry left out as a whole (an entry-level error) has its not_migrated row.
    - Every migrated row stands for a published entry, unless its group is one kept for
      another writer's memberships (§10).

    What is not compared, because the tables do not keep it, is stated in §13: which list an
    element stood in when the value had several, and how it was spelled (string or object,
    symbol or ticker, weight or weight_pct, blanks and letter case).  is_exact_legacy_value
    tells a row whose value is the legacy JSON exactly.
-#}
{%- set environment = migration_environment() -%}

with

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

published_entries as (

    select
        group_entries.cache_entry_id,
        group_entries.cache_type,
        group_entries.entry_key,
        group_entries.member_source,
        cache_entries.entry_value
    from {{ ref('int_group_entries') }} as group_entries
    inner join {{ ref('stg_legacy__cache_entries') }} as cache_entries
        on group_entries.cache_entry_id = cache_entries.cache_entry_id
    where group_entries.is_published

),

compat_entries as (

    select
        compat.*,
        cache_type_mappings.member_source
    from {{ ref('cache_entries_compat') }} as compat
    inner join cache_type_mappings
        on compat.type = cache_type_mappings.cache_type

),

migrated_rows as (

    select * from compat_entries
    where migration_status <> 'not_migrated'

),

left_out_elements as (

    select distinct
        cache_entry_id,
        element_position
    from {{ ref('migration_exceptions') }}
    where element_position is not null and severity = 'error'

),

foreign_memberships as (

    -- another writer's rows in the migration's groups (not in its ledger).  NOT EXISTS, an
    -- anti-join: NOT IN over the ledger's million ids at scale 100 was planned as a scan of
    -- the ledger per membership (the subplan cannot be hashed in work_mem) and ran for hours.
    select
        group_memberships.group_id,
        group_memberships.symbol
    from {{ ref('group_memberships') }} as group_memberships
    where
        group_memberships.group_id in (select migrated_rows.group_id from migrated_rows)
        and not exists (
            select from {{ ref('stg_migration_state__ledger_memberships') }} as ledger
            where ledger.membership_id = group_memberships.id
        )

),

entry_pairs as (

    select
        published_entries.cache_entry_id,
        published_entries.cache_type,
        published_entries.entry_key,
        published_entries.member_source,
        published_entries.entry_value as legacy_value,
        migrated_rows.value as compat_value,
        migrated_rows.group_id
    from published_entries
    inner join migrated_rows
        on
            published_entries.cache_type = migrated_rows.type
            and published_entries.entry_key = migrated_rows.key

),

element_readings as materialized (

    -- every element of both values, read once: [symbol, weight, other keys]
    select
        'legacy' as side,
        entry_pairs.cache_entry_id,
        entry_pairs.group_id,
        listed.element_position,
        {{ member_element_reading('listed.element') }} as reading
    from entry_pairs
    cross join
        lateral {{ member_list_elements('entry_pairs.legacy_value', 'entry_pairs.member_source') }}
            as listed
    union all
    select
        'compat' as side,
        entry_pairs.cache_entry_id,
        entry_pairs.group_id,
        listed.element_position,
        {{ member_element_reading('listed.element') }} as reading
    from entry_pairs
    cross join
        lateral {{ member_list_elements('entry_pairs.compat_value', 'entry_pairs.member_source') }}
            as listed

),

kept_readings as (

    -- the legacy elements minus the recorded errors and those another writer's row stands
    -- for; the compatibility value's elements as they are
    select element_readings.*
    from element_readings
    where
        element_readings.side = 'compat'
        or (
            not exists (
                select from left_out_elements
                where
                    left_out_elements.cache_entry_id = element_readings.cache_entry_id
                    and left_out_elements.element_position = element_readings.element_position
            )
            and not exists (
                select from foreign_memberships
                where
                    foreign_memberships.group_id = element_readings.group_id
                    and foreign_memberships.symbol = element_readings.reading ->> 0
            )
        )

),

member_readings as materialized (

    select
        entry_pairs.cache_entry_id,
        coalesce(
            jsonb_agg(kept_readings.reading order by kept_readings.element_position)
            filter (where kept_readings.side = 'legacy'),
            '[]'::jsonb
        ) as legacy_members,
        coalesce(
            jsonb_agg(kept_readings.reading order by kept_readings.element_position)
            filter (where kept_readings.side = 'compat'),
            '[]'::jsonb
        ) as compat_members
    from entry_pairs
    left join kept_readings
        on entry_pairs.cache_entry_id = kept_readings.cache_entry_id
    group by entry_pairs.cache_entry_id

),

value_rests as (

    select
        cache_entry_id,
        cache_type,
        entry_key,
        {{ value_without_member_lists('legacy_value', 'member_source') }} as legacy_rest,
        {{ value_without_member_lists('compat_value', 'member_source') }} as compat_rest
    from entry_pairs

),

value_differences as (

    select
        value_rests.cache_type,
        value_rests.entry_key,
        case
            when value_rests.legacy_rest <> value_rests.compat_rest
                then 'the value without its member lists differs from the legacy value''s'
            when member_readings.legacy_members <> member_readings.compat_members
                then format(
                    'members %s, but the legacy lists minus their recorded errors give %s',
                    left(member_readings.compat_members::text, 300),
                    left(member_readings.legacy_members::text, 300)
                )
        end as problem
    from value_rests
    inner join member_readings
        on value_rests.cache_entry_id = member_readings.cache_entry_id

),

missing_rows as (

    select
        published_entries.cache_type,
        published_entries.entry_key,
        'a published entry has no row in the compatibility relation' as problem
    from published_entries
    where not exists (
        select from migrated_rows
        where
            migrated_rows.type = published_entries.cache_type
            and migrated_rows.key = published_entries.entry_key
    )

),

unlisted_left_out_entries as (

    select
        left_out.cache_type,
        left_out.entry_key,
        format('the entry left out as %s is not listed as not_migrated', left_out.reason) as problem
    from {{ ref('migration_exceptions') }} as left_out
    where
        left_out.element_position is null
        and left_out.severity = 'error'
        and left_out.cache_type in (select cache_type_mappings.cache_type from cache_type_mappings)
        and not exists (
            select from compat_entries
            where
                compat_entries.migration_status = 'not_migrated'
                and compat_entries.type = left_out.cache_type
                and compat_entries.key = left_out.entry_key
                and compat_entries.environment = left_out.raw_environment
        )

),

extra_rows as (

    select
        migrated_rows.type as cache_type,
        migrated_rows.key as entry_key,
        format(
            'group %s is served, but no published entry of %s stands for it',
            migrated_rows.group_id, '{{ environment }}'
        ) as problem
    from migrated_rows
    where
        not exists (
            select from published_entries
            where
                published_entries.cache_type = migrated_rows.type
                and published_entries.entry_key = migrated_rows.key
        )
        and not exists (
            select from foreign_memberships
            where foreign_memberships.group_id = migrated_rows.group_id
        )

),

final as (

    select * from value_differences
    where problem is not null
    union all
    select * from missing_rows
    union all
    select * from unlisted_left_out_entries
    union all
    select * from extra_rows

)

select * from final
