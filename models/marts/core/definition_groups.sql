{{
    config(
        pre_hook=[
            "{{ serialize_mart_writes() }}",
            "create sequence if not exists {{ this.schema }}.definition_groups_id_seq",
            "create sequence if not exists {{ this.schema }}.group_memberships_id_seq",
            "{{ guard_mass_delete() }}",
            "{{ delete_removed_groups() }}",
        ],
        post_hook=[
            "{{ publish_memberships() }}",
            "analyze {{ this }}",
        ],
    )
}}
-- depends_on: {{ ref('int_group_memberships') }}
-- depends_on: {{ ref('int_member_elements') }}
-- depends_on: {{ ref('int_stock_sectors') }}
-- depends_on: {{ ref('int_group_entries') }}
{%- set environment = migration_environment() %}

with

desired_groups as (

    select * from {{ ref('int_definition_groups') }}

),

existing_groups as (

    {%- if is_incremental() %}
    select
        id,
        created_at,
        name,
        type,
        description,
        metadata,
        liquidity_filter,
        last_update,
        metadata -> 'source' ->> 'type' as source_type,
        metadata -> 'source' ->> 'key' as source_key
    from {{ this }}
    where environment = '{{ environment }}' and metadata ? 'source'
    {%- else %}
        select
            null::integer as id,
            null::timestamp as created_at,
            null::varchar(100) as name,
            null::varchar(50) as type,
            null::text as description,
            null::jsonb as metadata,
            null::jsonb as liquidity_filter,
            null::timestamp as last_update,
            null::text as source_type,
            null::text as source_key
        where false
    {%- endif %}

),

changed_groups as (

    select
        coalesce(
            existing_groups.id, nextval('{{ this.schema }}.definition_groups_id_seq')
        )::integer as id,
        desired_groups.name::varchar(100) as name,
        desired_groups.type::varchar(50) as type,
        desired_groups.description::text as description,
        desired_groups.metadata::jsonb as metadata,
        desired_groups.liquidity_filter::jsonb as liquidity_filter,
        desired_groups.environment::varchar(10) as environment,
        coalesce(existing_groups.created_at, {{ run_timestamp() }})::timestamp as created_at,
        {{ run_timestamp() }} as updated_at,
        desired_groups.last_update::timestamp as last_update

    from desired_groups
    left join existing_groups
        on {{ group_identity_matches('existing_groups', 'desired_groups') }}
    where
        existing_groups.id is null
        or (
            existing_groups.name,
            existing_groups.description,
            existing_groups.metadata,
            existing_groups.liquidity_filter,
            existing_groups.last_update
        ) is distinct from (
            desired_groups.name,
            desired_groups.description,
            desired_groups.metadata,
            desired_groups.liquidity_filter,
            desired_groups.last_update
        )

)

select * from changed_groups
