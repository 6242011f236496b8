{#-
    One row per cache entry of a mapped type in this run's environment, with the group it
    would become and, when it cannot become one, why (entry_problem).  The checks run in a
    fixed order so an entry gets exactly one reason:
      superseded_entry → invalid_name → name_too_long → unknown_shape → name_collision.
    Rebuilt every run from int_group_entry_contents, without the member lists: the checks
    compare entries with each other, and the entries' cheap columns are all they need.

    A contested name (two entries that would become the same (name, type) group) goes to the
    one that has existed longer: a definition_groups row of this environment that no cache
    entry built (no metadata.source: inserted by a legacy script) first, then the entry with
    the earliest coalesce(created_at, updated_at), then the lowest cache id.  That is a
    function of the data alone, so an incremental run and a fresh build agree, and a newcomer
    never takes the name (and the id) of a group whose entry still exists.  The table is
    found with adapter.get_relation (a ref would be a cycle: it is downstream).
-#}
{%- set environment = migration_environment() -%}
{%- set published_groups = adapter.get_relation(target.database, target.schema, 'definition_groups') -%}

with

group_entry_contents as (

    -- named, not select *: checked_entries is read twice, so PostgreSQL materialises it with
    -- every column it carries, and the member lists must not be among them
    select
        cache_entry_id,
        source_row_version,
        cache_type,
        entry_key,
        entry_name,
        environment,
        raw_environment,
        is_environment_respelled,
        source_updated_at,
        group_type,
        group_name,
        group_description,
        member_source,
        member_list_path,
        member_list_length,
        entry_value_without_members,
        content_checksum,
        member_list_checksum,
        entry_value_json_type
    from {{ ref('int_group_entry_contents') }}

),

entry_stamps as (

    -- how long each entry has existed: what decides a contested name
    select
        cache_entry_id,
        coalesce(created_at, updated_at) as entry_created_at
    from {{ ref('stg_legacy__cache_entries') }}
    where cache_entry_id in (select group_entry_contents.cache_entry_id from group_entry_contents)

),

legacy_groups as (

    -- rows of definition_groups that no cache entry built: they keep their names
    {%- if published_groups is not none %}
    select
        id as group_id,
        type as group_type,
        name as group_name
    from {{ published_groups }}
    where
        environment = '{{ environment }}'
        and not {{ is_migrated_group('metadata') }}
    {%- else %}
        select
            null::integer as group_id,
            null::text as group_type,
            null::text as group_name
        where false
    {%- endif %}

),

ranked_versions as (

    select
        *,
        row_number() over (
            partition by cache_type, entry_key
            order by source_updated_at desc nulls last, cache_entry_id desc
        ) as version_rank

    from group_entry_contents

),

checked_entries as (

    select
        *,
        case
            when version_rank > 1 then 'superseded_entry'
            when {{ is_invisible('entry_key') }} then 'invalid_name'
            when char_length(group_name) > 100 then 'name_too_long'
            when member_list_path is null then 'unknown_shape'
        end as own_problem

    from ranked_versions

),

name_claims as (

    select
        checked_entries.cache_entry_id,
        checked_entries.cache_type,
        checked_entries.entry_key,
        checked_entries.group_type,
        checked_entries.group_name,
        row_number() over (
            partition by checked_entries.group_type, checked_entries.group_name
            order by entry_stamps.entry_created_at asc nulls last, checked_entries.cache_entry_id asc
        ) as name_claim_rank

    from checked_entries
    left join entry_stamps
        on checked_entries.cache_entry_id = entry_stamps.cache_entry_id
    where checked_entries.own_problem is null

),

name_holders as (

    -- who keeps each contested name: a legacy row, else the first claim
    select
        name_claims.cache_entry_id,
        case
            when legacy_groups.group_id is not null
                then format(
                    'definition_groups row %s (inserted outside this migration: no metadata.source)',
                    legacy_groups.group_id
                )
            when name_claims.name_claim_rank > 1
                then format(
                    '%s entry %L (cache id %s), which has existed longer',
                    first_claims.cache_type, first_claims.entry_key, first_claims.cache_entry_id
                )
        end as name_holder

    from name_claims
    left join legacy_groups
        on
            name_claims.group_type = legacy_groups.group_type
            and name_claims.group_name = legacy_groups.group_name
    left join name_claims as first_claims
        on
            name_claims.group_type = first_claims.group_type
            and name_claims.group_name = first_claims.group_name
            and first_claims.name_claim_rank = 1

),

resolved_entries as (

    select
        checked_entries.*,
        coalesce(
            checked_entries.own_problem,
            case when name_holders.name_holder is not null then 'name_collision' end
        ) as entry_problem,
        name_holders.name_holder

    from checked_entries
    left join name_holders
        on checked_entries.cache_entry_id = name_holders.cache_entry_id

),

final as (

    select
        cache_entry_id,
        source_row_version,
        cache_type,
        entry_key,
        entry_name,
        environment,
        raw_environment,
        is_environment_respelled,
        source_updated_at,
        group_type,
        group_name,
        group_description,
        member_source,
        member_list_path,
        member_list_length,
        entry_value_without_members,
        content_checksum,
        member_list_checksum,
        entry_value_json_type,
        entry_problem,
        name_holder,
        entry_problem is null as is_published

    from resolved_entries

)

select * from final
