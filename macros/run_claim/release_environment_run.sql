{% macro release_environment_run() %}
    {#- Last on-run-end hook: the claim is finished (only this invocation's own claim). -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('select 1 /* this command made no claim */') }}
    {%- endif -%}
    do $release$
    begin
        if to_regclass('{{ run_claims_relation() | replace("'", "''") }}') is not null then
            update {{ run_claims_relation() }}
            set finished_at = clock_timestamp() at time zone 'UTC'
            where
                environment = '{{ migration_environment() }}'
                and invocation_id = '{{ invocation_id }}'
                and finished_at is null;
        end if;
    end
    $release$
{% endmacro %}
