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

    The reader role(s) -- var('reader_role'), else the environment variable DBT_READER_ROLE,
    comma-separated, empty by default -- are the people who run validate, query and
    retirement.  dbt_project.yml grants them SELECT on every mart and operators' view through
    the same `grants` config, so a rebuild (incremental or --full-refresh) re-grants what it
    replaced; ensure_reader_access (on-run-start) gives them what dbt's grants do not cover:
    USAGE on the target and operations schemas, SELECT on the run log and the ledger.
-#}

{% macro analyst_role() -%}
    {{ return(var('analyst_role', 'analyst') | string | trim) }}
{%- endmacro %}


{% macro reader_roles() -%}
    {#- The reader roles: var('reader_role'), else DBT_READER_ROLE; comma-separated. -#}
    {%- set configured = var('reader_role', env_var('DBT_READER_ROLE', '')) | string -%}
    {%- set roles = [] -%}
    {%- for role in configured.split(',') if role | trim and role | trim not in roles -%}
        {%- do roles.append(role | trim) -%}
    {%- endfor -%}
    {{ return(roles) }}
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


{% macro ensure_reader_access() %}
    {#-
        on-run-start, after ensure_state_tables: each reader role that exists gets USAGE on
        the target schema and this environment's operations schema, and SELECT on the run
        log and the ledger (state tables, not models, so dbt's grants do not reach them).
        Only what is missing is granted, so a run that finds it all in place changes nothing.
    -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('select 1 /* this command builds no model: no grants */') }}
    {%- endif -%}
    {%- set roles = reader_roles() -%}
    {%- if not roles -%}
        {{ return('select 1 /* no reader role (DBT_READER_ROLE / var reader_role) */') }}
    {%- endif -%}
    {%- set schemas = [target.schema, generate_schema_name('ops', none) | trim] -%}
    {%- set tables = [run_log_relation(), ledger_groups_relation(), ledger_memberships_relation()] -%}
    {%- set statements = [] -%}
    {%- for role in roles -%}
        {%- set exists = run_query(
            "select exists (select 1 from pg_roles where rolname = " ~ sql_literal(role) ~ ")"
        ).rows[0][0] -%}
        {%- if not exists -%}
            {%- do exceptions.warn(
                "Reader role '" ~ role ~ "' (DBT_READER_ROLE) does not exist, so it is granted "
                ~ "nothing (a build never creates roles: they are server-wide). Ask a DBA to run "
                ~ "'create role " ~ adapter.quote(role) ~ " login' (the next run grants to it), "
                ~ "or correct DBT_READER_ROLE."
            ) -%}
        {%- endif -%}
        {%- for schema in schemas if exists -%}
            {%- set lacking = run_query(
                "select not has_schema_privilege(" ~ sql_literal(role) ~ ", n.oid, 'usage')"
                ~ " from pg_namespace as n where n.nspname = " ~ sql_literal(schema)
            ).rows -%}
            {%- if lacking and lacking[0][0] -%}
                {%- do statements.append(
                    "grant usage on schema " ~ adapter.quote(schema) ~ " to " ~ adapter.quote(role)
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for table in tables if exists -%}
            {%- set lacking = run_query(
                "select not has_table_privilege(" ~ sql_literal(role) ~ ", "
                ~ sql_literal(table | trim) ~ ", 'select')"
            ).rows[0][0] -%}
            {%- if lacking -%}
                {%- do statements.append(
                    "grant select on " ~ (table | trim) ~ " to " ~ adapter.quote(role)
                ) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ missing_grants_block(
        statements,
        'the reader roles have their USAGE and SELECT (or none exists)',
        'reader grants: % (the owner of the schemas and state tables can grant them)',
    ) }}
{% endmacro %}


{% macro missing_grants_block(statements, when_none, warning) %}
    {#- The grants a hook found missing, as one statement: a role that may not grant them gets
        a warning (`warning`, % the server's message), never a failed build. -#}
    {%- if not statements -%}
        select 1 /* {{ when_none }} */
    {%- else -%}
    do $grants$
    begin
        {%- for statement in statements %}
        {{ statement }};
        {%- endfor %}
    exception when insufficient_privilege then
        raise warning '{{ warning | replace("'", "''") }}', sqlerrm;
    end
    $grants$
    {%- endif -%}
{% endmacro %}


{% macro postgres__apply_grants(relation, grant_config, should_revoke=True) %}
    {#-
        dbt's default__apply_grants, restricted to roles that exist and to the privileges
        configured here: the default revokes every privilege it was not told about.
    -#}
    {%- if not grant_config -%}
        {{ return(none) }}
    {%- endif -%}
    {#- a configured grantee may name several roles, comma-separated (DBT_READER_ROLE) -#}
    {%- set configured = {} -%}
    {%- for privilege, grantees in grant_config.items() -%}
        {%- set roles = [] -%}
        {%- for grantee in grantees -%}
            {%- for role in (grantee | string).split(',') if role | trim -%}
                {%- do roles.append(role | trim) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- do configured.update({privilege: roles}) -%}
    {%- endfor -%}
    {%- set grant_config = configured -%}
    {%- set wanted = [] -%}
    {%- for grantees in grant_config.values() -%}
        {%- for grantee in grantees -%}
            {%- do wanted.append(grantee) -%}
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
