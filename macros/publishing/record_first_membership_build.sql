{#-
    Publishing, step 6 (post-hook of group_memberships): the build that creates the table logs
    what it inserted and records it in the ledger; every later build has nothing to log
    (publish_memberships did).
-#}

{% macro record_first_membership_build() %}
    {#-
        Post-hook of group_memberships: on the build that creates the table, log what it
        inserted and mark every stock as published.
    -#}
    {%- if is_incremental() -%}
        select 1 /* publish_memberships logged this run */
    {%- else -%}
        {{ record_run_counts(ref('definition_groups'), this) }};
        {{ record_first_memberships() }};
        {{ mark_stocks_published() }}
    {%- endif -%}
{% endmacro %}
