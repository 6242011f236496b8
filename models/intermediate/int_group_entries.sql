{#-
    One row per cache entry of a mapped type in this run's environment, with the group it
    would become and, when it cannot become one, why (entry_problem).  The checks run in a
    fixed order so an entry gets exactly one reason:
      superseded_entry → invalid_name → name_too_long → unknown_shape → name_collision.
    Rebuilt every run from int_group_entry_contents, without the member lists: the checks
    compare entries with each other, and the entries' cheap columns are all they need.

    Names are compared as a person reads them (comparable_name: NFC, format characters
    removed, surrounding white space trimmed), so 'WS', ' WS' and 'W<zero-width space>S'
    contest one name.  A contested name (two entries that would become the same
    (name, type) group) goes, in
    this order, to: a row of definition_groups that no current entry of the migration stands
    behind (another writer's row, not in the ledger; or the migration's own group kept for
    another writer's members); the entry whose group holds the name now (so a loader's
    delete and re-insert of its cache row changes nothing); the entry with the earliest
    coalesce(created_at, updated_at); the lowest cache id.  So a newcomer never takes the
    name (and the id) of a group whose entry still exists, and a run never fails on a name
    another writer holds.  Names that differ only by letter case are separate groups, each
    entry naming the others (name_case_variants, a warning downstream).  The table is found with published_groups_relation (a ref would be
    a cycle: it is downstream); the ledger through its staging model.
-#}
{#- a database built before the ledger: it takes over that release's groups first -#}
{{ config(pre_hook="{{ adopt_previous_groups() }}") }}
{%- set environment = migration_environment() -%}
{%- set published_groups = published_groups_relation() -%}

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

ledger_groups as (

    select * from {{ ref('stg_migration_state__ledger_groups') }}
    where environment = '{{ environment }}'

),

published_groups as (

    -- this environment's rows of definition_groups, and which entry identity the migration
    -- built each one for (the ledger; NULL for another writer's row)
    {%- if published_groups %}
    select
        definition_groups.id as group_id,
        definition_groups.type as group_type,
        definition_groups.name as group_name,
        {{ comparable_name('definition_groups.name') }} as comparable_group_name,
        ledger_groups.group_type as owned_group_type,
        ledger_groups.source_type as owned_source_type,
        ledger_groups.source_key as owned_source_key
    from {{ published_groups }} as definition_groups
    left join ledger_groups
        on definition_groups.id = ledger_groups.group_id
    where definition_groups.environment = '{{ environment }}'
    {%- else %}
        -- before the table's first build: no row (the ledger is empty too)
        select
            null::integer as group_id,
            null::text as group_type,
            null::text as group_name,
            null::text as comparable_group_name,
            ledger_groups.group_type::text as owned_group_type,
            ledger_groups.source_type::text as owned_source_type,
            ledger_groups.source_key::text as owned_source_key
        from ledger_groups
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
        end as own_problem,
        {{ comparable_name('group_name') }} as comparable_group_name

    from ranked_versions

),

candidate_entries as (

    select * from checked_entries
    where own_problem is null

),

legacy_groups as (

    -- rows that keep their names whatever the entries say: another writer's rows, and the
    -- migration's own rows that no candidate entry stands behind any more (a group kept for
    -- another writer's members)
    select
        published_groups.group_id,
        published_groups.group_type,
        published_groups.group_name,
        published_groups.comparable_group_name,
        published_groups.owned_source_type is null as is_foreign
    from published_groups
    where not exists (
        select from candidate_entries
        where
            candidate_entries.group_type = published_groups.owned_group_type
            and candidate_entries.cache_type = published_groups.owned_source_type
            and candidate_entries.entry_key = published_groups.owned_source_key
    )

),

name_claims as (

    select
        candidate_entries.cache_entry_id,
        candidate_entries.cache_type,
        candidate_entries.entry_key,
        candidate_entries.group_type,
        candidate_entries.group_name,
        candidate_entries.comparable_group_name,
        row_number() over (
            partition by candidate_entries.group_type, candidate_entries.comparable_group_name
            order by
                -- the entry whose group holds the name now keeps it (delete and re-insert
                -- of its cache row included), then the entry that has existed longer
                current_holders.group_id is null,
                entry_stamps.entry_created_at asc nulls last,
                candidate_entries.cache_entry_id asc
        ) as name_claim_rank

    from candidate_entries
    left join entry_stamps
        on candidate_entries.cache_entry_id = entry_stamps.cache_entry_id
    left join published_groups as current_holders
        on
            candidate_entries.group_type = current_holders.group_type
            and candidate_entries.comparable_group_name = current_holders.comparable_group_name
            and candidate_entries.group_type = current_holders.owned_group_type
            and candidate_entries.cache_type = current_holders.owned_source_type
            and candidate_entries.entry_key = current_holders.owned_source_key

),

name_holders as (

    -- who keeps each contested name: a legacy row, else the first claim
    select
        name_claims.cache_entry_id,
        case
            when legacy_groups.is_foreign
                then format(
                    'definition_groups row %s (written by another writer: not in the migration''s ledger)',
                    legacy_groups.group_id
                )
            when legacy_groups.group_id is not null
                then format(
                    'definition_groups row %s (its entry is gone; kept for another writer''s memberships)',
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
            and name_claims.comparable_group_name = legacy_groups.comparable_group_name
    left join name_claims as first_claims
        on
            name_claims.group_type = first_claims.group_type
            and name_claims.comparable_group_name = first_claims.comparable_group_name
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

name_spellings as (

    -- every name that stays in the table after this run: the published entries' and the
    -- rows no current entry stands behind
    select
        cache_entry_id,
        group_type,
        comparable_group_name,
        format('%s entry %L (cache id %s)', cache_type, entry_key, cache_entry_id) as spelling
    from resolved_entries
    where entry_problem is null
    union all
    select
        null as cache_entry_id,
        group_type,
        comparable_group_name,
        format('definition_groups row %s (%L)', group_id, group_name) as spelling
    from legacy_groups

),

name_case_variants as (

    -- published names that differ from another only by letter case: both stay, each is told
    -- about the others
    select
        published_names.cache_entry_id,
        string_agg(other_names.spelling, '; ' order by other_names.spelling) as name_case_variants
    from name_spellings as published_names
    inner join name_spellings as other_names
        on
            published_names.group_type = other_names.group_type
            and lower(published_names.comparable_group_name) = lower(other_names.comparable_group_name)
            and published_names.comparable_group_name <> other_names.comparable_group_name
    where published_names.cache_entry_id is not null
    group by published_names.cache_entry_id

),

final as (

    select
        resolved_entries.cache_entry_id,
        resolved_entries.source_row_version,
        resolved_entries.cache_type,
        resolved_entries.entry_key,
        resolved_entries.entry_name,
        resolved_entries.environment,
        resolved_entries.raw_environment,
        resolved_entries.is_environment_respelled,
        resolved_entries.source_updated_at,
        resolved_entries.group_type,
        resolved_entries.group_name,
        resolved_entries.comparable_group_name,
        resolved_entries.group_description,
        resolved_entries.member_source,
        resolved_entries.member_list_path,
        resolved_entries.member_list_length,
        resolved_entries.entry_value_without_members,
        resolved_entries.content_checksum,
        resolved_entries.member_list_checksum,
        resolved_entries.entry_value_json_type,
        resolved_entries.entry_problem,
        resolved_entries.name_holder,
        name_case_variants.name_case_variants,
        resolved_entries.entry_problem is null as is_published

    from resolved_entries
    left join name_case_variants
        on resolved_entries.cache_entry_id = name_case_variants.cache_entry_id

)

select * from final
