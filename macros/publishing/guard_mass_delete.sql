{#-
    Publishing, step 3 (pre-hook of definition_groups) and its second half in step 5
    (publish_memberships): the mass-delete guard.  It refuses a run that would delete more
    than var('mass_delete_max_share') of this environment's groups or memberships once it
    holds at least var('mass_delete_min_rows') of them, or all of them: the usual sign of an
    empty or truncated source.  --vars '{allow_mass_delete: true}' lets it through.  Groups
    (and the memberships they take with them) are checked before any write; the memberships a
    changed group loses are checked once publish_memberships knows them, in the same
    transaction, so either refusal leaves nothing changed.
-#}

{% macro guard_mass_delete() %}
    {#- Pre-hook of definition_groups. -#}
    {%- if not execute or not is_incremental() -%}
        {{ return('select 1 /* first build: nothing to guard */') }}
    {%- endif -%}
    {%- set environment = migration_environment() -%}
    {%- set memberships = memberships_relation() -%}
    {%- set counts_sql -%}
        with
        existing_groups as (
            select owned_groups.id
            from ({{ owned_groups_sql(this) }}) as owned_groups
            where owned_groups.is_present
        ),
        doomed_groups as (
            {{ doomed_groups_sql(memberships) | indent(12) }}
        )
        select
            (select count(*) from existing_groups) as existing_groups,
            (select count(*) from doomed_groups) as doomed_groups,
            {%- if memberships is none %}
            0 as doomed_memberships
            {%- else %}
            (
                select count(*) from {{ memberships }} as group_memberships
                where
                    group_memberships.group_id in (select doomed_groups.id from doomed_groups)
                    and {{ is_owned_membership('group_memberships.id') }}
            ) as doomed_memberships
            {%- endif %}
    {%- endset -%}
    {%- set row = run_query(counts_sql).rows[0] -%}
    {%- set checks = [('definition_groups', row[0] | int, row[1] | int)] -%}
    {%- set doomed_memberships = row[2] | int -%}
    {%- if memberships is not none and doomed_memberships > 0 -%}
        {%- set existing = environment_membership_count(memberships, this, doomed_memberships) -%}
        {%- if existing is not none -%}
            {%- do checks.append(('group_memberships', existing, doomed_memberships)) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do mass_delete_verdict(checks) -%}
    {{ return('select 1 /* mass-delete guard passed */') }}
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


{% macro environment_membership_count(memberships, groups, doomed) %}
    {#-
        This environment's memberships, counted only as far as the verdict needs: none is
        returned when there are more than doomed / mass_delete_max_share of them, since then
        deleting doomed of them cannot trip the guard.
    -#}
    {%- set max_share = var('mass_delete_max_share', 0.5) | float -%}
    {%- set enough = ((doomed / max_share) | int) + 1 -%}
    {%- set counted = run_query(
        "select count(*) from (select 1 from " ~ memberships ~ " as group_memberships"
        ~ " inner join " ~ ledger_memberships_relation() ~ " as ledger_memberships"
        ~ " on group_memberships.id = ledger_memberships.membership_id"
        ~ " inner join " ~ ledger_groups_relation() ~ " as ledger_groups"
        ~ " on group_memberships.group_id = ledger_groups.group_id"
        ~ " where ledger_groups.environment = '" ~ migration_environment() ~ "'"
        ~ " limit " ~ enough ~ ") as counted_rows"
    ).columns[0].values()[0] | int -%}
    {{ return(none if counted >= enough else counted) }}
{% endmacro %}


{% macro mass_delete_verdict(checks) %}
    {#- checks: (table, rows the environment holds, rows this run would delete) triples. -#}
    {%- set environment = migration_environment() -%}
    {%- set max_share = var('mass_delete_max_share', 0.5) | float -%}
    {%- set min_rows = var('mass_delete_min_rows', 10) | int -%}
    {%- set allowed = flag_var('allow_mass_delete') -%}
    {%- set problems = [] -%}
    {%- for label, existing, doomed in checks -%}
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
{% endmacro %}
