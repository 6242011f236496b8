{#- Hooks of the intermediate models that keep their rows between runs, and the statistics
    every intermediate model refreshes. -#}

{% macro mapping_checksum(mappings) -%}
    {#-
        md5 of one cache_type_mappings row and of the version of the rules that read an entry
        (reader_version): a changed mapping, or a release that reads entries differently (v2:
        a universe's every member list; v3: every member list of every type), makes its
        entries be read again on the next run.
    -#}
    md5(concat_ws(
        '|', {{ mappings }}.cache_type, {{ mappings }}.group_type, {{ mappings }}.name_prefix,
        {{ mappings }}.description_source, {{ mappings }}.member_source, '{{ reader_version() }}'
    ))
{%- endmacro %}


{% macro reader_version() -%}
    v3
{%- endmacro %}


{% macro delete_stale_entry_contents() %}
    {#-
        Pre-hook of int_group_entry_contents: delete the row of every entry that is no longer
        in the environment as stored — its row version changed, it left (deleted, moved to
        another environment or type) or its type's mapping changed.  One index probe into
        cache_entries per stored entry; the JSON values are not read.
    -#}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored_contents
        where
            -- scalar subqueries, evaluated per stored row: an index probe each, where a join
            -- would read every cache entry
            stored_contents.source_row_version is distinct from (
                select cache_entries.source_row_version
                from {{ ref('stg_legacy__cache_entries') }} as cache_entries
                where
                    cache_entries.cache_entry_id = stored_contents.cache_entry_id
                    and {{ in_run_environment() }}
            )
            or stored_contents.mapping_checksum is distinct from (
                select {{ mapping_checksum('cache_type_mappings') }}
                from {{ ref('cache_type_mappings') }} as cache_type_mappings
                where cache_type_mappings.cache_type = stored_contents.cache_type
            )
    {%- else -%}
        select 1 /* first build */
    {%- endif -%}
{% endmacro %}


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


{% macro delete_previous_rows() %}
    {#-
        Pre-hook of a table whose every row each run recomputes but which must not be dropped
        (views are built on it): the previous rows go in the transaction that appends the new
        ones, so a reader sees either, never neither.
    -#}
    {%- if is_incremental() -%}
        delete from {{ this }}
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


{% macro change_batch_setting() -%}
    sprint59_migration.change_batch
{%- endmacro %}


{% macro claim_change_batch() %}
    {#-
        Pre-hook of int_stock_sectors: take the batch this run's rewritten stocks are stamped
        with, for the model's statement to read (current_setting is parallel-safe; nextval,
        which would keep the whole statement from running in parallel, is not).
    -#}
    select set_config('{{ change_batch_setting() }}', nextval('{{ batch_sequence() }}')::text, true)
{% endmacro %}


{% macro create_partial_index(columns, predicate) %}
    {#-
        Post-hook: a partial index (dbt's `indexes` config has no WHERE clause), created
        with the table, by the run that builds it.  A run that kept the table leaves it
        alone: even CREATE INDEX IF NOT EXISTS takes the table's SHARE lock first, and waits
        behind autovacuum (up to deadlock_timeout, 1 s) on a table a run has just written.
    -#}
    {%- if is_incremental() -%}
        select 1 /* table kept: its partial indexes exist */
    {%- else -%}
        create index on {{ this }} ({{ columns }}) where {{ predicate }}
    {%- endif -%}
{% endmacro %}
