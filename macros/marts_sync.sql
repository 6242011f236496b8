{#-
    The publishing logic shared by the two contract tables.  definition_groups writes its own
    changes and, in its post-hook, the membership diff, inside one transaction, so readers
    never see a group with a half-applied member list.  group_memberships creates its table,
    with its contract, on the first build and is empty afterwards.

    The diff covers what can have changed, not the whole environment:
      - every group this run inserted or updated (its updated_at is the run's timestamp): a
        member list changes only with its entry's checksum, which is in the group's metadata;
      - for SECTOR groups, the symbols whose stock_metadata entries int_stock_sectors rewrote
        since the last publish (its changed_batch is past the 'definition_groups.stocks'
        watermark).
    --vars '{reconcile_memberships: true}' diffs every group and symbol instead, which also
    repairs rows changed by hand.
-#}

{% macro serialize_mart_writes(tables='marts') %}
    {#-
        Two runs never write the same mart tables at the same time (the lock is held until
        commit).  The two contract tables share one lock, since publishing writes both; each
        analyst table has its own, so the analyst models of one run do not wait for each other.
    -#}
    select pg_advisory_xact_lock(hashtext('sprint59_migration.{{ tables }}'))
{% endmacro %}


{% macro group_identity_matches(group_alias, desired_alias) -%}
    {{ group_alias }}.type = {{ desired_alias }}.type
    and {{ group_alias }}.metadata -> 'source' ->> 'type' = {{ desired_alias }}.source_type
    and {{ group_alias }}.metadata -> 'source' ->> 'key' = {{ desired_alias }}.source_key
{%- endmacro %}


{% macro memberships_relation() %}
    {{ return(adapter.get_relation(this.database, this.schema, 'group_memberships')) }}
{% endmacro %}


{% macro reconcile_all_memberships() %}
    {{ return(flag_var('reconcile_memberships')) }}
{% endmacro %}


{% macro environment_groups_sql(groups_relation) -%}
    select
        definition_groups.id,
        definition_groups.type,
        definition_groups.name,
        definition_groups.updated_at,
        definition_groups.metadata -> 'source' ->> 'type' as source_type,
        definition_groups.metadata -> 'source' ->> 'key' as source_key
    from {{ groups_relation }} as definition_groups
    where
        definition_groups.environment = '{{ migration_environment() }}'
        and definition_groups.metadata ? 'source'
{%- endmacro %}


{% macro all_desired_memberships_sql(groups_relation) -%}
    select
        environment_groups.id as group_id,
        int_group_memberships.symbol,
        int_group_memberships.weight,
        int_group_memberships.metadata
    from {{ ref('int_group_memberships') }} as int_group_memberships
    inner join ({{ environment_groups_sql(groups_relation) }}) as environment_groups
        on
            environment_groups.type = int_group_memberships.group_type
            and environment_groups.source_type = int_group_memberships.source_type
            and environment_groups.source_key = int_group_memberships.source_key
{%- endmacro %}


{% macro membership_diff_sql(memberships_relation, groups_relation, sequence_name) -%}
    {#-
        One row per membership to insert, update or delete (change) for the groups and
        symbols in scope; ids of new rows come from the sequence.
    -#}
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

    select
        case
            when change = 'insert' then nextval('{{ sequence_name }}') else existing_id
        end::integer as id,
        group_id::integer as group_id,
        symbol::varchar(50) as symbol,
        weight::numeric(5, 4) as weight,
        metadata::jsonb as metadata,
        change
    from compared_memberships
    where change is not null
{%- endmacro %}


{% macro membership_sequence(memberships_schema) -%}
    {{ memberships_schema }}.group_memberships_id_seq
{%- endmacro %}


{% macro publish_memberships() %}
    {#-
        Post-hook of definition_groups: compute the membership diff once, check it against the
        mass-delete guard, apply it, log it for the analyst models and the run log, and move
        the stock watermark, all in the groups' transaction.
    -#}
    {%- set memberships = memberships_relation() -%}
    {%- if memberships is none or not execute -%}
        {{ return(record_run_counts(this, none)) }}
    {%- endif -%}
    {%- set environment = migration_environment() -%}
    {%- set batch = run_query("select nextval('" ~ batch_sequence() ~ "')").columns[0].values()[0] -%}
    {%- if not is_incremental() -%}
        {%- do run_query(
            "create temporary table groups_before_run (id integer, name text, type text) on commit drop"
        ) -%}
    {%- endif -%}
    {%- do run_query(
        "create temporary table membership_changes on commit drop as "
        ~ membership_diff_sql(memberships, this, membership_sequence(memberships.schema))
    ) -%}
    {%- set counts = run_query(
        "select count(*) filter (where change = 'insert'), count(*) filter (where change = 'update'),"
        ~ " count(*) filter (where change = 'delete') from membership_changes"
    ).rows[0] -%}
    {%- set cascaded = run_query(
        "select memberships_deleted from " ~ run_log_relation() ~ " where " ~ run_log_key()
    ).columns[0].values()[0] | int -%}
    {%- do check_membership_deletes(memberships, counts[2] | int, cascaded) -%}
    delete from {{ memberships }} as group_memberships
    using membership_changes
    where membership_changes.change = 'delete' and group_memberships.id = membership_changes.id;

    update {{ memberships }} as group_memberships
    set
        weight = membership_changes.weight,
        metadata = membership_changes.metadata,
        updated_at = {{ run_timestamp() }}
    from membership_changes
    where membership_changes.change = 'update' and group_memberships.id = membership_changes.id;

    {#- Written in (group_id, symbol) order: the sector query's count(distinct) over a join
        reads far less of the table when a group's rows sit together (4x at scale 10). #}
    insert into {{ memberships }} (id, group_id, symbol, weight, metadata, added_at, updated_at)
    select id, group_id, symbol, weight, metadata, {{ run_timestamp() }}, {{ run_timestamp() }}
    from membership_changes
    where change = 'insert'
    order by group_id, symbol;

    insert into {{ change_log_relation() }}
        (batch, environment, group_id, group_type, group_name, symbol, change)
    select
        {{ batch }}, '{{ environment }}', definition_groups.id, definition_groups.type,
        definition_groups.name, null,
        case
            when groups_before_run.id is null then 'insert'
            when (groups_before_run.name, groups_before_run.type)
                <> (definition_groups.name, definition_groups.type) then 'rename'
            else 'update'
        end
    from {{ this }} as definition_groups
    left join groups_before_run
        on definition_groups.id = groups_before_run.id
    where
        definition_groups.environment = '{{ environment }}'
        and definition_groups.updated_at = {{ run_timestamp() }}
    union all
    select
        {{ batch }}, '{{ environment }}', definition_groups.id, definition_groups.type,
        definition_groups.name, membership_changes.symbol, membership_changes.change
    from membership_changes
    inner join {{ this }} as definition_groups
        on membership_changes.group_id = definition_groups.id
    -- a new group's members are implied by its 'insert' row
    where definition_groups.id in (select groups_before_run.id from groups_before_run);

    {{ prune_change_log() }};

    update {{ run_log_relation() }}
    set
        memberships_inserted = memberships_inserted + {{ counts[0] | int }},
        memberships_updated = memberships_updated + {{ counts[1] | int }},
        memberships_deleted = memberships_deleted + {{ counts[2] | int }}
    where {{ run_log_key() }};

    {{ mark_stocks_published() }};

    {#- statistics: group_memberships' post-hook (vacuum_memberships) #}

    {{ record_run_counts(this, none) }}
{% endmacro %}


{% macro check_membership_deletes(memberships, deleted, cascaded) %}
    {#-
        The membership half of the mass-delete guard, once the diff is known (the group half
        runs before any write, in guard_mass_delete): raise, rolling the whole transaction
        back, when this run would delete too large a share of the environment's memberships.
        deleted: what the diff deletes; cascaded: what went with the removed groups, already
        gone from the table, so counted back in.
    -#}
    {%- set doomed = deleted + cascaded -%}
    {%- if doomed > 0 -%}
        {%- set remaining = environment_membership_count(memberships, this, doomed) -%}
        {%- if remaining is not none -%}
            {%- do mass_delete_verdict([('group_memberships', remaining + cascaded, doomed)]) -%}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}


{% macro doomed_groups_sql() -%}
    {#- The groups of this environment whose source entry is gone: the run deletes them. -#}
    select definition_groups.id, definition_groups.type, definition_groups.name
    from {{ this }} as definition_groups
    where
        definition_groups.environment = '{{ migration_environment() }}'
        -- never a row this migration did not build (a legacy script's insert)
        and {{ is_migrated_group('definition_groups.metadata') }}
        and not exists (
            select 1
            from {{ ref('int_definition_groups') }} as desired_groups
            where {{ group_identity_matches('definition_groups', 'desired_groups') }}
        )
{%- endmacro %}


{% macro delete_removed_groups() %}
    {#-
        Pre-hook of definition_groups: open the run's log entry, then drop the groups whose
        entry left this environment (their memberships go by cascade), counting both and
        logging them for the analyst models.
    -#}
    {{ open_run_log_entry() }};
    {%- if is_incremental() and execute %}
        {%- set memberships = memberships_relation() %}
        {%- set batch = run_query("select nextval('" ~ batch_sequence() ~ "')").columns[0].values()[0] %}
        create temporary table groups_before_run on commit drop as
        select definition_groups.id, definition_groups.name, definition_groups.type
        from {{ this }} as definition_groups
        where definition_groups.environment = '{{ migration_environment() }}';

        create temporary table doomed_groups on commit drop as
        {{ doomed_groups_sql() }};

        insert into {{ change_log_relation() }}
            (batch, environment, group_id, group_type, group_name, symbol, change)
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, null, 'delete'
        from doomed_groups
        {%- if memberships is not none %}
        union all
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, group_memberships.symbol, 'delete'
        from doomed_groups
        inner join {{ memberships }} as group_memberships
            on group_memberships.group_id = doomed_groups.id
        {%- endif %};

        with doomed_memberships as (
            {%- if memberships is none %}
            select 0 as memberships
            {%- else %}
            select count(*) as memberships
            from {{ memberships }}
            where group_id in (select doomed_groups.id from doomed_groups)
            {%- endif %}
        ),

        deleted_groups as (
            delete from {{ this }}
            where id in (select doomed_groups.id from doomed_groups)
            returning id
        )

        update {{ run_log_relation() }}
        set
            groups_deleted = groups_deleted + (select count(*) from deleted_groups),
            memberships_deleted = memberships_deleted
            + (select doomed_memberships.memberships from doomed_memberships)
        where {{ run_log_key() }}
    {%- endif %}
{% endmacro %}


{% macro record_first_membership_build() %}
    {#-
        Post-hook of group_memberships: on the build that creates the table, log what it
        inserted and mark every stock as published.
    -#}
    {%- if is_incremental() -%}
        select 1 /* publish_memberships logged this run */
    {%- else -%}
        {{ record_run_counts(ref('definition_groups'), this) }};
        {{ mark_stocks_published() }}
    {%- endif -%}
{% endmacro %}


{% macro vacuum_memberships() %}
    {#-
        Post-hook of group_memberships, after the commit (VACUUM cannot run in a transaction).
        VACUUM sets the visibility map, so the analysts' joins read the unique index alone (no
        heap fetches); it skips the pages no run touched, so it costs little when little
        changed, but still about 0.2 s at scale 100: a run that wrote no row skips it.
        ANALYZE samples the whole table, so it runs only when this run wrote at least 5 % of
        the rows (the first build wrote them all); smaller drift is autovacuum's.
    -#}
    {%- set figures = [true, true] -%}
    {%- if execute -%}
        {%- set figures = run_query(
            "select table_rows <= 0 or rows_written > 0, table_rows <= 0 or rows_written >= 0.05 * table_rows"
            ~ " from ("
            ~ " select (select reltuples from pg_class where oid = '" ~ this ~ "'::regclass) as table_rows,"
            ~ " (select coalesce(sum(memberships_inserted + memberships_updated + memberships_deleted), 0)"
            ~ " from " ~ run_log_relation() ~ " where " ~ run_log_key() ~ ") as rows_written"
            ~ ") as figures"
        ).rows[0] -%}
    {%- endif -%}
    {%- if figures[0] -%}
        vacuum {% if figures[1] %}(analyze) {% endif %}{{ this }}
    {%- else -%}
        select 1 /* this run wrote no membership: nothing to vacuum */
    {%- endif -%}
{% endmacro %}


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


{% macro mark_stocks_published() -%}
    {#- Every stock int_stock_sectors has rewritten so far is now in group_memberships. -#}
    {{ set_watermark(
        'definition_groups.stocks',
        'select max(changed_batch) from ' ~ ref('int_stock_sectors')
    ) }}
{%- endmacro %}
