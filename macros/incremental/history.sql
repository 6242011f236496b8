{#-
    The history models (models/marts/history/): per environment, one row per period in which a
    membership (group, symbol) or a group held the same values.  A run applies the change log
    past the model's watermark, like the analyst models, but never deletes: its pre-hook closes
    the open rows of the touched keys whose current values differ (or which are gone), and the
    model appends an open row for each touched key that is current and has no open row left.
    Without a watermark (the model's first build, or the environment's) the touched keys are all
    of the environment's: history opens at that run's time for everything current.

    A key touched by several pending batches (a run that published but failed before this
    model) is closed at the first of them and reopened at the last: its states in between are
    unknown, and the gap says so.
-#}

{% macro history_touched_keys_sql(keys) -%}
    {#-
        The keys (group_id, or group_id and symbol) the pending changes touch, with the first
        and last batch touching each and their times; without a watermark, every current key.
        Memberships: the logged ones, every current member of a group inserted or renamed (not
        logged one by one), every open row of a group renamed or deleted.  Groups: the
        group-level rows that change existence or identity.
    -#}
    {%- set membership = keys == 'membership' -%}
    {%- if analytics_rebuilds_environment() %}
    -- no watermark: every current key, opened at this run
    select
        current_rows.group_id,
        {%- if membership %}
        current_rows.symbol,
        {%- endif %}
        {{ history_opening_batch_sql() }} as first_batch,
        {{ history_opening_batch_sql() }} as last_batch,
        {{ run_timestamp() }} as first_published_at,
        {{ run_timestamp() }} as last_published_at
    from ({{ current_memberships_sql() if membership else current_groups_sql() }}) as current_rows
    {%- else %}
    select
        touches.group_id,
        {%- if membership %}
        touches.symbol,
        {%- endif %}
        min(touches.batch) as first_batch,
        max(touches.batch) as last_batch,
        min(coalesce(touches.published_at, {{ run_timestamp() }})) as first_published_at,
        max(coalesce(touches.published_at, {{ run_timestamp() }})) as last_published_at
    from (
        {%- if membership %}
        select pending_changes.group_id, pending_changes.symbol, pending_changes.batch, pending_changes.published_at
        from ({{ pending_changes_sql() }}) as pending_changes
        where pending_changes.symbol is not null
        union all
        select group_memberships.group_id, group_memberships.symbol, pending_changes.batch, pending_changes.published_at
        from ({{ pending_changes_sql() }}) as pending_changes
        inner join {{ ref('group_memberships') }} as group_memberships
            on pending_changes.group_id = group_memberships.group_id
        where pending_changes.symbol is null and pending_changes.change in ('insert', 'rename')
        union all
        select history.group_id, history.symbol, pending_changes.batch, pending_changes.published_at
        from ({{ pending_changes_sql() }}) as pending_changes
        inner join {{ this }} as history
            on pending_changes.group_id = history.group_id and history.valid_to is null
        where pending_changes.symbol is null and pending_changes.change in ('rename', 'delete')
        {%- else %}
        select pending_changes.group_id, pending_changes.batch, pending_changes.published_at
        from ({{ pending_changes_sql() }}) as pending_changes
        where pending_changes.symbol is null and pending_changes.change in ('insert', 'rename', 'delete')
        {%- endif %}
    ) as touches
    group by touches.group_id{% if membership %}, touches.symbol{% endif %}
    {%- endif %}
{%- endmacro %}


{% macro history_opening_batch_sql() -%}
    {#- The batch current at a first build: the last one the batch sequence handed out. -#}
    (select case when is_called then last_value else 0 end from {{ batch_sequence() }})
{%- endmacro %}


{% macro close_history_rows(keys, current_rows_sql, compared_columns) %}
    {#-
        Pre-hook of a history model: close the open rows of the touched keys (all of the
        environment's on a rebuild) whose key is no longer current or whose compared_columns
        changed, at the first pending batch touching them.
    -#}
    {%- if not is_incremental() -%}
        select 1 /* first build: nothing to close */
    {%- else -%}
        {%- set membership = keys == 'membership' -%}
        {%- set key_columns = ['group_id', 'symbol'] if membership else ['group_id'] -%}
        {%- set rebuild = analytics_rebuilds_environment() -%}
        {%- if rebuild %}
        {{ log(this.name ~ ": no history watermark for " ~ migration_environment()
            ~ ": comparing the environment's current rows with its open history rows", info=true) }}
        {%- endif %}
        with

        touched_keys as (
            {%- if rebuild %}
            select
                {{ key_columns | join(', ') }},
                {{ history_opening_batch_sql() }} as first_batch,
                {{ run_timestamp() }} as first_published_at
            from {{ this }}
            where environment = '{{ migration_environment() }}' and valid_to is null
            {%- else %}
            {{ history_touched_keys_sql(keys) }}
            {%- endif %}
        ),

        current_rows as (
            {{ current_rows_sql }}
        )

        update {{ this }} as history
        set
            valid_to = touched_keys.first_published_at,
            closed_batch = touched_keys.first_batch
        from touched_keys
        where
            history.valid_to is null
            {%- for column in key_columns %}
            and history.{{ column }} = touched_keys.{{ column }}
            {%- endfor %}
            and not exists (
                select 1
                from current_rows
                where
                    {%- for column in key_columns %}
                    current_rows.{{ column }} = history.{{ column }} and
                    {%- endfor %}
                    (current_rows.{{ compared_columns | join(', current_rows.') }})
                    is not distinct from
                    (history.{{ compared_columns | join(', history.') }})
            )
    {%- endif -%}
{% endmacro %}


{% macro create_open_history_index(key_columns) %}
    {#- Post-hook of a history model: at most one open row per key, enforced by the database. -#}
    create unique index if not exists {{ adapter.quote(this.identifier ~ '_open_key') }}
        on {{ this }} ({{ key_columns | join(', ') }}) where valid_to is null
{% endmacro %}


{% macro current_memberships_sql() -%}
    {#- The environment's memberships as the history models record them. -#}
    select
        definition_groups.environment,
        group_memberships.group_id,
        definition_groups.type as group_type,
        ledger_groups.source_type,
        ledger_groups.source_key,
        definition_groups.name as group_name,
        group_memberships.symbol,
        group_memberships.weight,
        -- a row a legacy script wrote may hold anything there: only a whole number is a position
        case
            when group_memberships.metadata ->> 'position' ~ '^[0-9]{1,9}$'
                then (group_memberships.metadata ->> 'position')::integer
        end as position
    from {{ ref('group_memberships') }} as group_memberships
    inner join {{ ref('definition_groups') }} as definition_groups
        on group_memberships.group_id = definition_groups.id
    inner join {{ ledger_groups_relation() }} as ledger_groups
        on group_memberships.group_id = ledger_groups.group_id
    where
        definition_groups.environment = '{{ migration_environment() }}'
        and ledger_groups.environment = '{{ migration_environment() }}'
        -- what the migration publishes, its ledger (other writers' rows are not in the change
        -- log), read from its tables as the change log is: through a view, the pre-hook's
        -- correlated test could not reach the key's index and scanned the whole ledger once
        -- per touched key (the first 1 %-changed run at scale 100: 632 s)
        and exists (
            select from {{ ledger_memberships_relation() }} as ledger_memberships
            where ledger_memberships.membership_id = group_memberships.id
        )
{%- endmacro %}


{% macro current_groups_sql() -%}
    {#- The environment's groups as definition_group_history records them. -#}
    select
        definition_groups.environment,
        definition_groups.id as group_id,
        definition_groups.type as group_type,
        definition_groups.name as group_name,
        ledger_groups.source_type,
        ledger_groups.source_key
    from {{ ref('definition_groups') }} as definition_groups
    inner join {{ ledger_groups_relation() }} as ledger_groups
        on definition_groups.id = ledger_groups.group_id
    where ledger_groups.environment = '{{ migration_environment() }}'
{%- endmacro %}
