{#-
    The membership diff: one row per group_memberships row this run inserts, updates or
    deletes.  definition_groups' post-hook (publish_memberships) applies it in the groups'
    transaction, after dbt's merge wrote the groups and under the marts' lock.

    A view, so that it is evaluated at that moment: it reads the groups the merge has just
    written (their updated_at is this run's timestamp) and the memberships as they stand.
    The published tables are a source, not a ref: they are downstream of this model.

    It covers what can have changed, not the whole environment: every member of a group
    this run inserted or updated (a member list changes only with its entry's checksum,
    which is in the group's metadata), and for SECTOR groups the stocks int_stock_sectors
    rewrote since the last publish (past the 'definition_groups.stocks' watermark) and the
    SECTOR members with no current stock behind them.  --vars '{reconcile_memberships: true}'
    diffs every group and symbol instead (which also repairs rows changed by hand).

    Before the published tables exist (a first build) they are read as empty: the view holds
    no row, and group_memberships' first build inserts every desired row itself.  The next
    run that builds the view reads the tables.
-#}
{{ config(materialized='view') }}
{%- set reconcile = flag_var('reconcile_memberships') %}


with

ledger_groups as (

    select * from {{ ref('stg_migration_state__ledger_groups') }}
    where environment = '{{ migration_environment() }}'

),

ledger_memberships as (

    select * from {{ ref('stg_migration_state__ledger_memberships') }}

),

published_groups as (

    {%- if published_tables_exist() %}
        select * from {{ source('published', 'definition_groups') }}
    {%- else %}
        -- nothing published yet: a view cannot name a missing table
        select
            null::integer as id,
            null::timestamp as updated_at
        where false
    {%- endif %}

),

published_memberships as not materialized (

    -- inlined where it is read: the check for another writer's member is then a probe of
    -- the table's unique (group_id, symbol) index; as a materialized CTE it was a scan of
    -- every membership per inserted row (a 1 %-change run at scale 100 ran for minutes)
    {%- if published_tables_exist() %}
        select * from {{ source('published', 'group_memberships') }}
    {%- else %}
        select
            null::integer as id,
            null::integer as group_id,
            null::varchar(50) as symbol,
            null::numeric(5, 4) as weight,
            null::jsonb as metadata
        where false
    {%- endif %}

),

stocks_watermark as (

    select applied_batch from {{ ref('stg_migration_state__watermarks') }}
    where
        environment = '{{ migration_environment() }}'
        and consumer = 'definition_groups.stocks'

),

environment_groups as (

    -- the environment's groups the migration owns (its ledger) that are still in the table
    select
        ledger_groups.group_id as id,
        ledger_groups.group_type as type,
        ledger_groups.source_type,
        ledger_groups.source_key,
        published_groups.updated_at
    from ledger_groups
    inner join published_groups
        on ledger_groups.group_id = published_groups.id

),

changed_groups as (

    select * from environment_groups
    {%- if not reconcile %}
        -- the run's stamp as a literal, as the diff always had it: the planner then expects
        -- the few groups a run changed (a parameter would get a generic, larger estimate)
        where updated_at = {{ run_timestamp() }}
    {%- endif %}

),

sector_groups as (

    select * from environment_groups
    where type = 'SECTOR'

),

owned_memberships as (

    select published_memberships.*
    from published_memberships
    inner join ledger_memberships
        on published_memberships.id = ledger_memberships.membership_id

),

vanished_stock_symbols as (

    -- SECTOR members with no current stock behind them: their entry was re-keyed, moved or
    -- deleted in a way that left no tombstone (a change in place, a --full-refresh of
    -- int_stock_sectors); one anti-join over the environment's SECTOR memberships
    select distinct owned_memberships.symbol
    from owned_memberships
    inner join sector_groups
        on owned_memberships.group_id = sector_groups.id
    where not exists (
        select
        from {{ ref('int_stock_sectors') }} as stock_sectors
        where
            stock_sectors.symbol = owned_memberships.symbol
            and not stock_sectors.is_removed
            and stock_sectors.stock_problem is null
    )

),

changed_stock_symbols as (

    select stock_sectors.symbol
    from {{ ref('int_stock_sectors') }} as stock_sectors
    {%- if not reconcile %}
        where
            stock_sectors.changed_batch
            > coalesce((select stocks_watermark.applied_batch from stocks_watermark), -1)
    {%- endif %}
    union
    select vanished_stock_symbols.symbol from vanished_stock_symbols

),

list_memberships as (

    {{ list_membership_rows() | indent(4) }}

),

sector_memberships as (

    {{ sector_membership_rows() | indent(4) }}

),

desired_list_memberships as (

    select
        changed_groups.id as group_id,
        list_memberships.symbol,
        list_memberships.weight,
        list_memberships.metadata
    from changed_groups
    inner join list_memberships
        on
            changed_groups.source_type = list_memberships.source_type
            and changed_groups.source_key = list_memberships.source_key
            and changed_groups.type = list_memberships.group_type

),

environment_sector_memberships as not materialized (

    -- read twice below, each time filtered: inlined, so each filter reaches an index
    select
        sector_groups.id as group_id,
        sector_memberships.symbol,
        sector_memberships.weight,
        sector_memberships.metadata
    from sector_groups
    inner join sector_memberships
        on
            sector_groups.source_type = sector_memberships.source_type
            and sector_groups.source_key = sector_memberships.source_key

),

desired_sector_memberships as (

    -- every member of a changed SECTOR group, and the changed stocks in every sector
    select * from environment_sector_memberships
    where group_id in (select changed_groups.id from changed_groups)
    union
    select * from environment_sector_memberships
    where
        {%- if reconcile %}
            -- every symbol: a semi-join, not a long array searched element by element
            symbol in (select changed_stock_symbols.symbol from changed_stock_symbols)
        {%- else %}
            -- usually few: an array, which the planner reads by index
            symbol = any(array(select changed_stock_symbols.symbol from changed_stock_symbols))
        {%- endif %}

),

desired_memberships as (

    select * from desired_list_memberships
    union all
    select * from desired_sector_memberships

),

existing_memberships as (

    -- the migration's own rows (the ledger); another writer's are never changed
    select
        owned_memberships.id,
        owned_memberships.group_id,
        owned_memberships.symbol,
        owned_memberships.weight,
        owned_memberships.metadata
    from owned_memberships
    where owned_memberships.group_id in (select changed_groups.id from changed_groups)
    union
    select
        owned_memberships.id,
        owned_memberships.group_id,
        owned_memberships.symbol,
        owned_memberships.weight,
        owned_memberships.metadata
    from owned_memberships
    inner join sector_groups
        on owned_memberships.group_id = sector_groups.id
    where
        {%- if reconcile %}
            owned_memberships.symbol in (select changed_stock_symbols.symbol from changed_stock_symbols)
        {%- else %}
            owned_memberships.symbol
            = any(array(select changed_stock_symbols.symbol from changed_stock_symbols))
        {%- endif %}

),

compared_memberships as (

    select
        existing_memberships.id as membership_id,
        coalesce(desired_memberships.group_id, existing_memberships.group_id) as group_id,
        coalesce(desired_memberships.symbol, existing_memberships.symbol) as symbol,
        desired_memberships.weight,
        desired_memberships.metadata,
        case
            when existing_memberships.id is null then 'insert'
            when desired_memberships.group_id is null then 'delete'
            -- in parentheses: sqlfluff cannot parse IS DISTINCT FROM as a bare WHEN condition
            when (
                (existing_memberships.weight, existing_memberships.metadata)
                is distinct from (desired_memberships.weight, desired_memberships.metadata)
            ) then 'update'
        end as change
    from desired_memberships
    full outer join existing_memberships
        on
            desired_memberships.group_id = existing_memberships.group_id
            and desired_memberships.symbol = existing_memberships.symbol

),

final as (

    select
        membership_id::integer as membership_id,
        group_id::integer as group_id,
        symbol::varchar(50) as symbol,
        weight::numeric(5, 4) as weight,
        metadata::jsonb as metadata,
        change::text as change
    from compared_memberships
    where
        change is not null
        -- a member another writer already put in the group stays theirs: no second row
        and not (
            change = 'insert'
            and exists (
                select
                from published_memberships as foreign_memberships
                where
                    foreign_memberships.group_id = compared_memberships.group_id
                    and foreign_memberships.symbol = compared_memberships.symbol
            )
        )

)

select * from final
