{#-
    One row per period in which a membership held the same group name, weight and position.
    Its pre-hook closes the open rows the change log says changed (close_history_rows); this
    model appends the new open rows: the touched memberships that are current and have no open
    row left.  How and why: macros/incremental/history.sql, docs/design.md ("Membership history").
-#}
{{
    config(
        pre_hook="{{ close_history_rows('membership', current_memberships_sql(), ['group_type', 'group_name', 'weight', 'position']) }}",
        post_hook="{{ create_open_history_index(['group_id', 'symbol']) }}",
    )
}}

with

current_memberships as (

    {{ current_memberships_sql() | indent(4) }}

),

touched_memberships as (

    {{ history_touched_keys_sql('membership') | indent(4) }}

),

opened_memberships as (

    select
        current_memberships.environment,
        current_memberships.group_id,
        current_memberships.group_type::varchar(50) as group_type,
        current_memberships.source_type,
        current_memberships.source_key,
        current_memberships.group_name::varchar(100) as group_name,
        current_memberships.symbol::varchar(50) as symbol,
        current_memberships.weight::numeric(5, 4) as weight,
        current_memberships.position,
        touched_memberships.last_published_at::timestamp as valid_from,
        null::timestamp as valid_to,
        touched_memberships.last_batch::bigint as opened_batch,
        null::bigint as closed_batch
    from current_memberships
    inner join touched_memberships
        on
            current_memberships.group_id = touched_memberships.group_id
            and current_memberships.symbol = touched_memberships.symbol
    {%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as history
        where
            history.group_id = current_memberships.group_id
            and history.symbol = current_memberships.symbol
            and history.valid_to is null
    )
    {%- endif %}

)

select * from opened_memberships
