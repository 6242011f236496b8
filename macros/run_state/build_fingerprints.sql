{#-
    The fingerprint of the last build the harness may skip after (validation/fingerprint.py,
    docs/design.md §12): one row per environment, written by `sprint59 build` after dbt
    exited 0 and only when that build changed nothing the fingerprint covers.  dbt never
    reads it; plain `dbt build` never writes it.  Created here, with the other state tables,
    so that a build does no DDL of its own once they exist.
-#}

{% macro build_fingerprints_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_build_fingerprints
{%- endmacro %}


{% macro create_build_fingerprints() %}
    create table if not exists {{ build_fingerprints_relation() }} (
        environment varchar(10) primary key,
        fingerprint text not null,
        invocation_id text not null,
        recorded_at timestamp without time zone not null
    );
    comment on table {{ build_fingerprints_relation() }} is
        'Per environment: the fingerprint of everything a build reads, as of the last harness build that found nothing left to change (sprint59 build skips while it matches).';
{% endmacro %}
