{#-
    One run per environment at a time, under plain dbt as under the harness.

    Two `dbt build`s of one environment started at once (an overlapping schedule) used to
    race on the environment's working relations and on dbt's relation cache, and one failed
    with `relation "int_definition_groups" already exists`.  A session advisory lock cannot
    stop that under plain dbt: dbt closes the connection of the on-run-start hooks before
    the first model runs, and every model gets a fresh one, so no database session lives as
    long as the run (tests/test_concurrent_runs.py shows it).  So a run claims its
    environment in a table instead (`python -m validation build` also holds a session lock
    for its whole invocation, so two harness runs take turns before dbt starts):

    - claim_environment_run (first on-run-start hook) claims the row of its environment in
      <target schema>.migration_run_claims.  When another run holds it and is alive, this run
      stops at once, before any model, with a message saying so.  A holder counts as alive
      while the server runs any statement of its dbt invocation (the query comment carries
      the invocation id: query_comment_with_invocation); one that shows none for
      var('run_claim_idle_seconds') seconds (default 5) was stopped, and its claim is taken
      over.  Waiting instead is not safe under plain dbt: dbt reads the catalog into its
      relation cache before the hooks, and the run waited for changes it meanwhile.
    - stale_cached_relations: for the same reason, a run whose cache no longer matches the
      catalog once it holds the claim (the other run finished just while it started) stops
      too, changing nothing.
    - release_environment_run (last on-run-end hook) marks the claim finished.

    Runs of different environments do not stop each other (their working relations live
    in per-environment schemas; the marts serialise their own writes).
-#}

{% macro claim_environment_run() %}
    {#- Only commands that build models claim (source freshness, docs generate, test … read). -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('select 1 /* this command builds no model: no claim */') }}
    {%- endif -%}
    {%- set environment = migration_environment() -%}
    {%- set idle_seconds = var('run_claim_idle_seconds', 5) | float -%}
    {%- set poll_seconds = 0.25 -%}
    {%- set idle_polls = (idle_seconds / poll_seconds) | round(0, 'ceil') | int -%}

    {%- set found = run_query(
        "select to_regclass(" ~ sql_literal(run_claims_relation() | trim) ~ ") is not null,"
        ~ " to_regnamespace(" ~ sql_literal(adapter.quote(target.schema)) ~ ") is not null"
    ).rows[0] -%}
    {%- if not found[0] -%}
    {#- the first build of a schema creates the table; later runs do no DDL here (and a
        schema a DBA made is used as it is: CREATE SCHEMA needs CREATE on the database) -#}
    {%- call statement('create_run_claims') -%}
        select pg_advisory_xact_lock(hashtext('sprint59_migration.run_claims'));
        {%- if not found[1] %}
        create schema if not exists {{ adapter.quote(target.schema) }};
        {%- endif %}
        create table if not exists {{ run_claims_relation() }} (
            environment varchar(10) primary key,
            invocation_id text not null,
            claimed_at timestamp without time zone not null,
            finished_at timestamp without time zone
        );
        comment on table {{ run_claims_relation() }} is
            'Which dbt run holds each environment (finished_at NULL: in progress); one run per environment at a time.';
    {%- endcall -%}
    {%- endif -%}

    {%- set state = {'claimed': false, 'idle': 0, 'holder': none, 'take_over': ''} -%}
    {%- for poll in range(idle_polls + 2) -%}
        {%- set row = run_query(claim_attempt_sql(environment, state['take_over'])).rows[0] -%}
        {%- if row[0] > 0 -%}
            {%- do state.update({'claimed': true}) -%}
            {%- break -%}
        {%- endif -%}
        {%- if row[1] is not none and row[1] != state['holder'] -%}
            {%- do state.update({'holder': row[1], 'idle': 0, 'take_over': ''}) -%}
        {%- endif -%}
        {%- if row[3] -%}
            {{ exceptions.raise_compiler_error(
                "Another run of environment " ~ environment ~ " is in progress (dbt invocation "
                ~ row[1] ~ ", started " ~ row[2] ~ " UTC); this run stopped before changing "
                ~ "anything. Run it again when that run has finished."
            ) }}
        {%- endif -%}
        {%- do state.update({'idle': state['idle'] + 1}) -%}
        {%- if state['holder'] is not none and state['idle'] >= idle_polls -%}
            {{ log(
                "The run holding " ~ environment ~ " (dbt invocation " ~ state['holder']
                ~ ") has run no statement for " ~ idle_seconds ~ " s: it was stopped; "
                ~ "taking over its claim.", info=true
            ) }}
            {%- do state.update({'take_over': state['holder']}) -%}
        {%- else -%}
            {%- do run_query('select pg_sleep(' ~ poll_seconds ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not state['claimed'] -%}
        {{ exceptions.raise_compiler_error(
            "Another run of environment " ~ environment ~ " holds it (dbt invocation "
            ~ state['holder'] ~ "); this run stopped before changing anything. Run it again."
        ) }}
    {%- endif -%}

    {%- set stale = stale_cached_relations() -%}
    {%- if stale -%}
        {%- do run_query(release_environment_run()) -%}
        {{ exceptions.raise_compiler_error(
            "Another run of environment " ~ environment ~ " changed its relations while this "
            ~ "run was starting (it finished or stopped just now): " ~ stale | join(', ')
            ~ ". This run stopped before changing anything; run it again."
        ) }}
    {%- endif -%}
    {{ return(
        "select 1 /* " ~ environment ~ " claimed by dbt invocation " ~ invocation_id ~ " */"
    ) }}
{% endmacro %}


{% macro claim_attempt_sql(environment, take_over) %}
    {#-
        One attempt, in one statement (hooks run outside a transaction, so it commits on its
        own): claim the environment when it is free (no row, or the holder finished), already
        ours, or held by the dead run being taken over; ON CONFLICT makes two attempts at once
        safe (the second waits for the first's row, then finds it taken).  Returns whether it
        claimed, the holder, since when, and whether the server runs any statement of the
        holder's invocation.
    -#}
    with holder as (
        select invocation_id, claimed_at
        from {{ run_claims_relation() }}
        where environment = '{{ environment }}' and finished_at is null
    ),

    attempt as (
        insert into {{ run_claims_relation() }} as claims (environment, invocation_id, claimed_at)
        values (
            '{{ environment }}', '{{ invocation_id }}', clock_timestamp() at time zone 'UTC'
        )
        on conflict (environment) do update set
            invocation_id = excluded.invocation_id,
            claimed_at = excluded.claimed_at,
            finished_at = null
        where
            claims.finished_at is not null
            or claims.invocation_id = excluded.invocation_id
            or claims.invocation_id = '{{ take_over }}'
        returning 1
    )

    select
        (select count(*) from attempt) as claimed,
        (select invocation_id from holder) as holder,
        (select date_trunc('second', claimed_at)::text from holder) as holder_since,
        exists (
            select 1
            from pg_stat_activity
            where
                pid <> pg_backend_pid()
                and datname = current_database()
                and position((select invocation_id from holder) in query) > 0
        ) as holder_is_running
{% endmacro %}


{% macro run_claims_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_run_claims
{%- endmacro %}
