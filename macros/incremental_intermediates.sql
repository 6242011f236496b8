{#- Hooks of the two intermediate models that keep their rows between runs, and the statistics
    every intermediate model refreshes. -#}

{% macro delete_stale_member_elements() %}
    {#-
        Pre-hook of int_member_elements: delete the elements of every entry whose member list
        is no longer published as stored (the entry changed, lost its group, or left).  The
        distinct (entry, checksum) pairs are walked on the index, one probe per entry, instead
        of reading every element.
    -#}
    {%- if is_incremental() -%}
        with recursive stored_lists as (
            (
                select cache_entry_id, member_list_checksum
                from {{ this }}
                order by cache_entry_id, member_list_checksum
                limit 1
            )
            union all
            select next_list.cache_entry_id, next_list.member_list_checksum
            from stored_lists
            cross join lateral (
                select elements.cache_entry_id, elements.member_list_checksum
                from {{ this }} as elements
                where
                    (elements.cache_entry_id, elements.member_list_checksum)
                    > (stored_lists.cache_entry_id, stored_lists.member_list_checksum)
                order by elements.cache_entry_id, elements.member_list_checksum
                limit 1
            ) as next_list
        ),

        stale_lists as (
            select stored_lists.cache_entry_id, stored_lists.member_list_checksum
            from stored_lists
            where not exists (
                select 1
                from {{ ref('int_group_entries') }} as group_entries
                where
                    group_entries.is_published
                    and group_entries.cache_entry_id = stored_lists.cache_entry_id
                    and group_entries.member_list_checksum = stored_lists.member_list_checksum
            )
        )

        delete from {{ this }} as elements
        using stale_lists
        where
            elements.cache_entry_id = stale_lists.cache_entry_id
            and elements.member_list_checksum = stale_lists.member_list_checksum
    {%- else -%}
        select 1 /* first build */
    {%- endif -%}
{% endmacro %}


{% macro prune_published_tombstones() %}
    {#-
        Pre-hook of int_stock_sectors: forget removed stocks once definition_groups has
        published their removal (its watermark has passed their batch).
    -#}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where is_removed and changed_batch <= coalesce({{ watermark('definition_groups.stocks') }}, -1)
    {%- else -%}
        select 1 /* first build */
    {%- endif -%}
{% endmacro %}


{% macro analyze_unless_kept() %}
    {#-
        Post-hook of every intermediate model: fresh statistics for a table built by this run.
        An incremental model that kept its rows changed only a few of them: its statistics
        still hold, and autovacuum refreshes them once enough rows changed.
    -#}
    {%- if is_incremental() -%}
        select 1 /* rows kept: statistics left to autovacuum */
    {%- else -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
