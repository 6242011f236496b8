{% macro guard_mass_delete() %}
    {#-
        Pre-hook of definition_groups.  Refuses (before any write, so the transaction rolls
        back with nothing changed) a run that would delete more than
        var('mass_delete_max_share') of this environment's groups or memberships once it
        holds at least var('mass_delete_min_rows') of them, or all of them: the usual sign of
        an empty or truncated source.  --vars '{allow_mass_delete: true}' lets it through.
    -#}
    {%- if not execute or not is_incremental() -%}
        {{ return('select 1 /* first build: nothing to guard */') }}
    {%- endif -%}
    {%- set environment = migration_environment() -%}
    {%- set memberships = memberships_relation() -%}
    {%- set counts_sql -%}
        with

        existing_groups as (
            select id, type, metadata
            from {{ this }}
            where environment = '{{ environment }}' and metadata ? 'source'
        ),

        doomed_groups as (
            select existing_groups.id
            from existing_groups
            where not exists (
                select 1
                from {{ ref('int_definition_groups') }} as desired_groups
                where {{ group_identity_matches('existing_groups', 'desired_groups') }}
            )
        )

        select
            (select count(*) from existing_groups) as existing_groups,
            (select count(*) from doomed_groups) as doomed_groups,
            {%- if memberships is none %}
            0 as existing_memberships,
            0 as doomed_memberships
            {%- else %}
            (
                select count(*)
                from ({{ existing_memberships_sql(memberships, this) }}) as existing_memberships
            ) as existing_memberships,
            (
                select count(*)
                from ({{ existing_memberships_sql(memberships, this) }}) as existing_memberships
                where not exists (
                    select 1
                    from ({{ desired_memberships_sql(this) }}) as desired_memberships
                    where
                        desired_memberships.group_id = existing_memberships.group_id
                        and desired_memberships.symbol = existing_memberships.symbol
                )
            ) as doomed_memberships
            {%- endif %}
    {%- endset -%}
    {%- set row = run_query(counts_sql).rows[0] -%}
    {%- set max_share = var('mass_delete_max_share', 0.5) | float -%}
    {%- set min_rows = var('mass_delete_min_rows', 10) | int -%}
    {%- set allowed = var('allow_mass_delete', false) in [true, 'true', 'True', 1, '1', 'yes'] -%}
    {%- set problems = [] -%}
    {%- for label, existing, doomed in [
        ('definition_groups', row[0] | int, row[1] | int),
        ('group_memberships', row[2] | int, row[3] | int),
    ] -%}
        {%- if existing > 0 and (doomed == existing or (existing >= min_rows and doomed > existing * max_share)) -%}
            {%- do problems.append(
                "%d of %d %s (%.0f%%)" | format(doomed, existing, label, 100.0 * doomed / existing)
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if problems and not allowed -%}
        {{ exceptions.raise_compiler_error(
            "Mass-delete guard: this run would delete " ~ problems | join(' and ')
            ~ " in environment " ~ environment ~ ", so nothing was changed. "
            ~ "The cache_entries source for " ~ environment ~ " looks empty or truncated; "
            ~ "check it, or if the deletion is intended rerun with "
            ~ "--vars '{allow_mass_delete: true}'."
        ) }}
    {%- elif problems -%}
        {{ log("Mass-delete guard overridden (allow_mass_delete): deleting " ~ problems | join(' and ') ~ " in " ~ environment, info=true) }}
    {%- endif -%}
    {{ return('select 1 /* mass-delete guard passed */') }}
{% endmacro %}
