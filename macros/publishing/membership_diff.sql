{#-
    Publishing, step 5a (inside publish_memberships): the membership diff.  It covers what can
    have changed, not the whole environment:
      - every group this run inserted or updated (its updated_at is the run's timestamp): a
        member list changes only with its entry's checksum, which is in the group's metadata;
      - for SECTOR groups, the symbols whose stock_metadata entries int_stock_sectors rewrote
        since the last publish (its changed_batch is past the 'definition_groups.stocks'
        watermark), and the SECTOR members with no current stock behind them.
    --vars '{reconcile_memberships: true}' diffs every group and symbol instead (which also
    repairs rows changed by hand).
-#}

{% macro membership_diff_sql(memberships_relation, groups_relation, sequence_name) -%}
    {#- One row per membership to insert, update or delete (change); new ids from the sequence. -#}
    {%- set reconcile = reconcile_all_memberships() %}
    with

    environment_groups as (
        {{ environment_groups_sql(groups_relation) | indent(8) }}
    ),

    changed_groups as (
        select * from environment_groups
        {%- if not reconcile %}
        where environment_groups.updated_at = {{ run_timestamp() }}
        {%- endif %}
    ),

    sector_groups as (
        select * from environment_groups
        where environment_groups.type = 'SECTOR'
    ),

    {%- if memberships_relation is not none %}

    vanished_stock_symbols as (
        -- SECTOR members with no current stock behind them: their entry was re-keyed, moved
        -- or deleted in a way that left no tombstone (a change in place, a --full-refresh of
        -- int_stock_sectors); one anti-join over the environment's SECTOR memberships
        select distinct group_memberships.symbol
        from {{ memberships_relation }} as group_memberships
        inner join sector_groups
            on group_memberships.group_id = sector_groups.id
        inner join {{ ledger_memberships_relation() }} as ledger_memberships
            on group_memberships.id = ledger_memberships.membership_id
        where not exists (
            select 1
            from {{ ref('int_stock_sectors') }} as stock_sectors
            where
                stock_sectors.symbol = group_memberships.symbol
                and not stock_sectors.is_removed
                and stock_sectors.stock_problem is null
        )
    ),

    {%- endif %}

    changed_stock_symbols as (
        select distinct stock_sectors.symbol
        from {{ ref('int_stock_sectors') }} as stock_sectors
        {%- if not reconcile %}
        where
            stock_sectors.changed_batch
            > coalesce({{ watermark('definition_groups.stocks') }}, -1)
        {%- endif %}
        {%- if memberships_relation is not none %}
        union
        select vanished_stock_symbols.symbol from vanished_stock_symbols
        {%- endif %}
    ),

    desired_list_memberships as (
        select
            changed_groups.id as group_id,
            list_memberships.symbol,
            list_memberships.weight,
            list_memberships.metadata
        from changed_groups
        inner join ({{ list_membership_rows() }}) as list_memberships
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
        inner join ({{ sector_membership_rows() }}) as sector_memberships
            on
                sector_groups.source_type = sector_memberships.source_type
                and sector_groups.source_key = sector_memberships.source_key
    ),

    desired_sector_memberships as (
        -- every member of a changed SECTOR group, and the changed stocks in every sector
        select * from environment_sector_memberships
        where environment_sector_memberships.group_id in (select changed_groups.id from changed_groups)
        union
        select * from environment_sector_memberships
        where {{ symbol_in_changed_stocks('environment_sector_memberships.symbol', reconcile) }}
    ),

    desired_memberships as (
        select * from desired_list_memberships
        union all
        select * from desired_sector_memberships
    ),

    existing_memberships as (
        -- the migration's own rows (the ledger); another writer's are never changed
        {%- if memberships_relation is none %}
        select
            null::integer as id,
            null::integer as group_id,
            null::varchar(50) as symbol,
            null::numeric(5, 4) as weight,
            null::jsonb as metadata
        where false
        {%- else %}
        select
            group_memberships.id,
            group_memberships.group_id,
            group_memberships.symbol,
            group_memberships.weight,
            group_memberships.metadata
        from {{ memberships_relation }} as group_memberships
        inner join {{ ledger_memberships_relation() }} as ledger_memberships
            on group_memberships.id = ledger_memberships.membership_id
        where group_memberships.group_id in (select changed_groups.id from changed_groups)
        union
        select
            group_memberships.id,
            group_memberships.group_id,
            group_memberships.symbol,
            group_memberships.weight,
            group_memberships.metadata
        from {{ memberships_relation }} as group_memberships
        inner join sector_groups
            on group_memberships.group_id = sector_groups.id
        inner join {{ ledger_memberships_relation() }} as ledger_memberships
            on group_memberships.id = ledger_memberships.membership_id
        where {{ symbol_in_changed_stocks('group_memberships.symbol', reconcile) }}
        {%- endif %}
    ),

    compared_memberships as (
        select
            existing_memberships.id as existing_id,
            coalesce(desired_memberships.group_id, existing_memberships.group_id) as group_id,
            coalesce(desired_memberships.symbol, existing_memberships.symbol) as symbol,
            desired_memberships.weight,
            desired_memberships.metadata,
            case
                when existing_memberships.id is null then 'insert'
                when desired_memberships.group_id is null then 'delete'
                when
                    (existing_memberships.weight, existing_memberships.metadata)
                    is distinct from (desired_memberships.weight, desired_memberships.metadata)
                    then 'update'
            end as change
        from desired_memberships
        full outer join existing_memberships
            on
                desired_memberships.group_id = existing_memberships.group_id
                and desired_memberships.symbol = existing_memberships.symbol
    )

    {#- A member another writer already put in the group stays theirs: no second row. #}
    select
        case
            when change = 'insert' then nextval({{ sql_literal(sequence_name) }}) else existing_id
        end::integer as id,
        group_id::integer as group_id,
        symbol::varchar(50) as symbol,
        weight::numeric(5, 4) as weight,
        metadata::jsonb as metadata,
        change
    from compared_memberships
    where
        change is not null
        {%- if memberships_relation is not none %}
        and not (
            change = 'insert'
            and exists (
                select from {{ memberships_relation }} as foreign_memberships
                where
                    foreign_memberships.group_id = compared_memberships.group_id
                    and foreign_memberships.symbol = compared_memberships.symbol
            )
        )
        {%- endif %}
{%- endmacro %}


{% macro symbol_in_changed_stocks(column, reconcile) -%}
    {#-
        The filter to the changed stocks' symbols.  Usually few: as an array, which the planner
        reads by index (it assumes a handful of elements).  On a reconciliation every symbol
        is "changed", and a long array would be searched element by element: a semi-join then.
    -#}
    {%- if reconcile -%}
        {{ column }} in (select changed_stock_symbols.symbol from changed_stock_symbols)
    {%- else -%}
        {{ column }} = any(array(select changed_stock_symbols.symbol from changed_stock_symbols))
    {%- endif -%}
{%- endmacro %}


{% macro reconcile_all_memberships() %}
    {{ return(flag_var('reconcile_memberships')) }}
{% endmacro %}
