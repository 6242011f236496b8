{#-
    One row per period in which a group existed under the same type and name.  Its pre-hook
    closes the open rows of the groups the change log says were deleted or renamed
    (close_history_rows); this model appends the open rows of the touched groups that are
    current and have no open row left.  How and why: macros/incremental/history.sql.
-#}
{{
    config(
        pre_hook="{{ close_history_rows('group', current_groups_sql(), ['group_type', 'group_name']) }}",
        post_hook="{{ create_open_history_index(['group_id']) }}",
    )
}}

with

current_groups as (

    {{ current_groups_sql() | indent(4) }}

),

touched_groups as (

    {{ history_touched_keys_sql('group') | indent(4) }}

),

opened_groups as (

    select
        current_groups.environment,
        current_groups.group_id,
        current_groups.group_type::varchar(50) as group_type,
        current_groups.group_name::varchar(100) as group_name,
        current_groups.source_type,
        current_groups.source_key,
        touched_groups.last_published_at::timestamp as valid_from,
        null::timestamp as valid_to,
        touched_groups.last_batch::bigint as opened_batch,
        null::bigint as closed_batch
    from current_groups
    inner join touched_groups
        on current_groups.group_id = touched_groups.group_id
    {%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as history
        where history.group_id = current_groups.group_id and history.valid_to is null
    )
    {%- endif %}

)

select * from opened_groups
