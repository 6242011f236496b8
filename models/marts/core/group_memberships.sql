{{
    config(
        pre_hook=[
            "{{ serialize_mart_writes() }}",
            "create sequence if not exists {{ this.schema }}.group_memberships_id_seq",
        ],
        post_hook=[
            after_commit("{{ vacuum_memberships() }}"),
            "{{ record_first_membership_build() }}",
        ],
    )
}}
-- depends_on: {{ ref('int_group_memberships') }}
-- depends_on: {{ ref('int_member_elements') }}
-- depends_on: {{ ref('int_stock_sectors') }}
-- depends_on: {{ ref('int_group_entries') }}
{#
    definition_groups' post-hook applies each run's membership diff in its own transaction
    (macros/marts_sync.sql), so once the table exists this model has nothing left to write.
    It owns the table: the first build creates it, with its contract, from every desired row.
#}

with

desired_memberships as (

    {{ all_desired_memberships_sql(ref('definition_groups')) | indent(4) }}

)

select
    nextval('{{ this.schema }}.group_memberships_id_seq')::integer as id,
    group_id::integer as group_id,
    symbol::varchar(50) as symbol,
    weight::numeric(5, 4) as weight,
    metadata::jsonb as metadata,
    {{ run_timestamp() }} as added_at,
    {{ run_timestamp() }} as updated_at
from desired_memberships
{%- if is_incremental() %}
{#- a constant-false filter: PostgreSQL plans the query but never runs it #}
where false
{%- endif %}
{#- in (group_id, symbol) order: see publish_memberships #}
order by group_id, symbol
