{#-
    Refreshing the analyst models (they hold every environment; a run touches only its own).
    Each model applies the change log past its watermark: it deletes and recomputes only the
    rows those changes touch, in one transaction, then moves its watermark.  Without a
    watermark (the model's first build, or the environment's), it rebuilds all of the
    environment's rows.
-#}

{% macro analytics_rebuilds_environment() %}
    {#- True when this run recomputes all of its environment's rows in this model. -#}
    {%- if not execute or not is_incremental() -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set applied = run_query(
        "select count(*) from " ~ watermarks_relation()
        ~ " where environment = '" ~ migration_environment() ~ "' and consumer = '" ~ analytics_consumer() ~ "'"
    ).columns[0].values()[0] | int -%}
    {{ return(applied == 0) }}
{% endmacro %}


{% macro pending_changes_sql() -%}
    {#- The change log rows of this environment this model has not applied yet. -#}
    select *
    from {{ change_log_relation() }} as change_log
    where
        change_log.environment = '{{ migration_environment() }}'
        and change_log.batch > coalesce({{ watermark(analytics_consumer()) }}, -1)
{%- endmacro %}


{% macro replace_environment_rows(stale_rows_condition) %}
    {#-
        Pre-hook of an analyst model: delete what this run recomputes: the rows matching
        stale_rows_condition, or all of the environment's rows when it rebuilds them.
    -#}
    {%- if not is_incremental() -%}
        select 1 /* first build */
    {%- elif analytics_rebuilds_environment() -%}
        delete from {{ this }} where environment = '{{ migration_environment() }}'
    {%- else -%}
        delete from {{ this }}
        where environment = '{{ migration_environment() }}' and ({{ stale_rows_condition }})
    {%- endif -%}
{% endmacro %}


{% macro analytics_consumer() -%}
    {#-
        The name this model's watermark goes by: the model, and the version of the rule for
        what its rows hold when its config says one (meta rows_rule_version, set for the
        analyst models in dbt_project.yml: 2, the migration's rows only, its ledger).  A
        release that changes the rule bumps the version, so that every environment recomputes
        the model once (no watermark under the new name) instead of keeping rows of the old
        rule.  The history models have none: their rows are never recomputed.
    -#}
    {%- set version = (config.get('meta') or {}).get('rows_rule_version') -%}
    {{- this.name ~ ('@v' ~ version if version else '') -}}
{%- endmacro %}


{% macro advance_watermark(consumer=none) %}
    {#- Post-hook of an analyst or history model: everything logged so far is applied, under
        `consumer` (default: the model's name).  A watermark of an earlier version of an
        analyst model (analytics_consumer) goes: it would hold back prune_change_log. -#}
    {%- set consumer = consumer or this.name -%}
    {%- if consumer != this.name %}
    delete from {{ watermarks_relation() }}
    where
        environment = '{{ migration_environment() }}'
        and split_part(consumer, '@', 1) = '{{ this.name }}'
        and consumer <> '{{ consumer }}';
    {%- endif %}
    {{ set_watermark(
        consumer,
        "select coalesce(max(batch), 0) from " ~ change_log_relation()
        ~ " where environment = '" ~ migration_environment() ~ "'"
    ) }}
{% endmacro %}


{% macro analyze_when_rebuilt() %}
    {#- Post-hook of an analyst model: fresh statistics after a rebuild (autovacuum's
        analyze covers the small changes of incremental runs). -#}
    {%- if analytics_rebuilds_environment() -%}
        analyze {{ this }}
    {%- else -%}
        select 1 /* few rows changed: statistics left to autovacuum */
    {%- endif -%}
{% endmacro %}


{% macro changed_group_ids_sql(group_type=none) -%}
    select pending_changes.group_id
    from ({{ pending_changes_sql() }}) as pending_changes
    {%- if group_type is not none %}
    where pending_changes.group_type = '{{ group_type }}'
    {%- endif %}
{%- endmacro %}


{% macro changed_symbols_sql() -%}
    {#- Symbols whose list of groups changed: logged memberships, and every member of a group
        that is new or was renamed. -#}
    select pending_changes.symbol
    from ({{ pending_changes_sql() }}) as pending_changes
    where pending_changes.symbol is not null
    union
    select group_memberships.symbol
    from {{ ref('group_memberships') }} as group_memberships
    where group_memberships.group_id in (
        select pending_changes.group_id
        from ({{ pending_changes_sql() }}) as pending_changes
        where pending_changes.symbol is null and pending_changes.change in ('insert', 'rename')
    )
{%- endmacro %}


{% macro changed_etf_names_sql() -%}
    {#- ETFs whose pairs must be recomputed, under their logged and their current names. -#}
    select pending_changes.group_name
    from ({{ pending_changes_sql() }}) as pending_changes
    where pending_changes.group_type = 'ETF'
    union
    select definition_groups.name
    from {{ ref('definition_groups') }} as definition_groups
    where definition_groups.id in ({{ changed_group_ids_sql('ETF') }})
{%- endmacro %}


{% macro current_etf_names_sql() -%}
    select definition_groups.name
    from {{ ref('definition_groups') }} as definition_groups
    where definition_groups.environment = '{{ migration_environment() }}' and definition_groups.type = 'ETF'
{%- endmacro %}
