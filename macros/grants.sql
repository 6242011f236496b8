{#-
    Read-only access for analysts.  dbt_project.yml grants SELECT on the marts (the two
    tables and the analyst models) to var('analyst_role') through dbt `grants`; these macros
    make that safe to run as any user:

    - ensure_analyst_role (on-run-start, only for commands that build models) gives the role
      USAGE on the target schema when it lacks it.  It never creates the role: roles are
      server-wide objects, which a build has no business creating on a user's server.  A
      missing role gets a warning naming the fix (a DBA's `create role … nologin`), and the
      marts are built without analyst grants.
    - postgres__apply_grants (dbt's grant step, overridden for this project) grants only to
      roles that exist, so a missing role never fails a model, and it only ever revokes
      the privileges it manages (SELECT): a legacy writer's INSERT granted by a DBA stays.
    var('analyst_role') empty turns grants off.
-#}

{% macro analyst_role() -%}
    {{ return(var('analyst_role', 'analyst') | string | trim) }}
{%- endmacro %}


{% macro sql_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


{% macro ensure_analyst_role() %}
    {%- set role = analyst_role() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('select 1 /* this command builds no model: no grants */') }}
    {%- endif -%}
    {%- if not role -%}
        {{ return('select 1 /* grants are off (analyst_role is empty) */') }}
    {%- endif -%}
    {%- set exists = run_query(
        "select exists (select 1 from pg_roles where rolname = " ~ sql_literal(role) ~ ")"
    ).rows[0][0] -%}
    {%- if not exists -%}
        {%- do exceptions.warn(
            "Role '" ~ role ~ "' does not exist, so the marts are built without analyst "
            ~ "grants (a build never creates roles: they are server-wide). Ask a DBA to run "
            ~ "'create role " ~ adapter.quote(role) ~ " nologin' (the next run grants to it), "
            ~ "or choose another role with --vars '{analyst_role: <role>}' "
            ~ "('' turns grants off)."
        ) -%}
        {{ return('select 1 /* analyst role missing: grants skipped */') }}
    {%- endif -%}
    {%- set has_usage = run_query(
        "select has_schema_privilege(" ~ sql_literal(role) ~ ", n.oid, 'usage')"
        ~ " from pg_namespace as n where n.nspname = " ~ sql_literal(target.schema)
    ).rows -%}
    {%- if not has_usage or has_usage[0][0] -%}
        {{ return('select 1 /* the analyst role has USAGE on the schema (or it is not built yet) */') }}
    {%- endif -%}
    do $grants$
    begin
        grant usage on schema {{ adapter.quote(target.schema) }} to {{ adapter.quote(role) }};
    exception when insufficient_privilege then
        raise warning 'analyst grants: % (the schema''s owner can grant USAGE on it)', sqlerrm;
    end
    $grants$
{% endmacro %}


{% macro postgres__apply_grants(relation, grant_config, should_revoke=True) %}
    {#-
        dbt's default__apply_grants, restricted to roles that exist and to the privileges
        configured here: the default revokes every privilege it was not told about.
    -#}
    {%- if not grant_config -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set wanted = [] -%}
    {%- for grantees in grant_config.values() -%}
        {%- for grantee in grantees if grantee | trim -%}
            {%- do wanted.append(grantee | trim) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set existing = [] -%}
    {%- if wanted -%}
        {%- set literals = [] -%}
        {%- for grantee in wanted -%}
            {%- do literals.append(sql_literal(grantee)) -%}
        {%- endfor -%}
        {%- set found = run_query(
            "select rolname from pg_roles where rolname in (" ~ literals | join(', ') ~ ")"
        ) -%}
        {%- set existing = found.columns[0].values() | list -%}
    {%- endif -%}
    {%- set granting = {} -%}
    {%- for privilege, grantees in grant_config.items() -%}
        {%- do granting.update({privilege: grantees | select('in', existing) | list}) -%}
    {%- endfor -%}
    {%- if should_revoke -%}
        {%- set current = adapter.standardize_grants_dict(run_query(get_show_grant_sql(relation))) -%}
        {%- set managed = {} -%}
        {%- for privilege, grantees in current.items() -%}
            {%- if privilege | lower in grant_config.keys() | map('lower') | list -%}
                {%- do managed.update({privilege: grantees}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set needs_granting = diff_of_two_dicts(granting, managed) -%}
        {%- set needs_revoking = diff_of_two_dicts(managed, granting) -%}
    {%- else -%}
        {%- set needs_granting = granting -%}
        {%- set needs_revoking = {} -%}
    {%- endif -%}
    {%- set statements = get_dcl_statement_list(relation, needs_revoking, get_revoke_sql)
        + get_dcl_statement_list(relation, needs_granting, get_grant_sql) -%}
    {%- if statements -%}
        {{ call_dcl_statements(statements) }}
    {%- endif -%}
{% endmacro %}


{% macro postgres__get_grant_sql(relation, privilege, grantees) -%}
    {#-
        dbt's default__get_grant_sql with each grantee quoted, as dbt's revoke already does: an
        analyst role named "BI" is that role, not bi.
    -#}
    {%- set quoted_grantees = [] -%}
    {%- for grantee in grantees -%}
        {%- do quoted_grantees.append(adapter.quote(grantee)) -%}
    {%- endfor -%}
    grant {{ privilege }} on {{ relation.render() }} to {{ quoted_grantees | join(', ') }}
{%- endmacro %}
