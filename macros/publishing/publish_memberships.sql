{#-
    Publishing, step 5 (post-hook of definition_groups, in the groups' transaction): apply the
    membership diff, which the model int_group_membership_changes computes, to
    group_memberships, so a reader never sees a group with a half-applied member list.
    group_memberships is found with adapter.get_relation: a ref would be a cycle
    (group_memberships depends on definition_groups).
-#}

{% macro publish_memberships() %}
    {#-
        Post-hook of definition_groups: read the diff once (the view is evaluated now, after
        the merge, under the lock), check it against the mass-delete guard, apply it, log it
        for the analyst models and the run log, and move the stock watermark, all in the
        groups' transaction.
    -#}
    {#- rendered before anything returns, so that parsing records their refs (a hook's refs
        are found by rendering it while parsing, when execute is false) -#}
    {%- set changes = ref('int_group_membership_changes') -%}
    {%- set stocks_published = mark_stocks_published() -%}
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
    {#- Read once: the view would answer differently after each statement below.  New rows
        take their ids from the sequence here, as SERIAL would. -#}
    {%- set read_changes -%}
        create temporary table membership_changes on commit drop as
        select
            case
                when change = 'insert'
                    then nextval({{ sql_literal(id_sequence('group_memberships_id_seq', memberships.schema)) }})::integer
                else membership_id
            end as id,
            group_id, symbol, weight, metadata, change
        from {{ changes }}
    {%- endset -%}
    {%- do run_query(read_changes) -%}
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

    {#- the ledger: forget what left, and rows of changed groups another writer deleted #}
    delete from {{ ledger_memberships_relation() }} as ledger_memberships
    using membership_changes
    where membership_changes.change = 'delete' and ledger_memberships.membership_id = membership_changes.id;

    delete from {{ ledger_memberships_relation() }} as ledger_memberships
    where
        ledger_memberships.group_id in (
            select definition_groups.id from {{ this }} as definition_groups
            where
                definition_groups.environment = '{{ environment }}'
                and definition_groups.updated_at = {{ run_timestamp() }}
        )
        and not exists (
            select from {{ memberships }} as group_memberships
            where group_memberships.id = ledger_memberships.membership_id
        );

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

    insert into {{ ledger_memberships_relation() }} (membership_id, group_id, recorded_at)
    select id, group_id, {{ run_timestamp() }}
    from membership_changes
    where change = 'insert';

    insert into {{ change_log_relation() }}
        (batch, environment, group_id, group_type, group_name, symbol, change, published_at)
    select
        {{ batch }}, '{{ environment }}', definition_groups.id, definition_groups.type,
        definition_groups.name, null,
        case
            when groups_before_run.id is null then 'insert'
            when (groups_before_run.name, groups_before_run.type)
                <> (definition_groups.name, definition_groups.type) then 'rename'
            else 'update'
        end,
        {{ run_timestamp() }}
    from {{ this }} as definition_groups
    left join groups_before_run
        on definition_groups.id = groups_before_run.id
    where
        definition_groups.environment = '{{ environment }}'
        and definition_groups.updated_at = {{ run_timestamp() }}
    union all
    select
        {{ batch }}, '{{ environment }}', definition_groups.id, definition_groups.type,
        definition_groups.name, membership_changes.symbol, membership_changes.change,
        {{ run_timestamp() }}
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

    {{ stocks_published }};

    {#- statistics: group_memberships' post-hook (analyze_memberships) #}

    {{ record_run_counts(this, none) }}
{% endmacro %}


{% macro memberships_relation() %}
    {{ return(adapter.get_relation(this.database, this.schema, 'group_memberships')) }}
{% endmacro %}


{% macro mark_stocks_published() -%}
    {#- Every stock int_stock_sectors has rewritten so far is now in group_memberships. -#}
    {{ set_watermark(
        'definition_groups.stocks',
        'select max(changed_batch) from ' ~ ref('int_stock_sectors')
    ) }}
{%- endmacro %}
