{#-
    What lets a run do work in proportion to what changed instead of to the whole source.

    - migration_batch_seq numbers the batches of changes.  int_stock_sectors stamps every row
      it rewrites with a new batch, and definition_groups' publish stamps the change log.
    - migration_change_log: one row per group (symbol NULL; change insert, update, rename or
      delete) or membership (group, symbol; insert, update or delete) that a publish changed,
      with the run's timestamp (published_at: when the change became visible; the history
      models date their rows with it; NULL on rows written before they existed).
      The memberships of a group inserted by the same publish are not listed one by one.  The
      analyst models read the rows after their watermark and rebuild only what they touch.
    - migration_watermarks: per environment and consumer, the last batch it has applied.  A
      consumer writes its watermark in the same transaction as its changes, so a run that fails
      half-way leaves the watermark behind and the next run picks the same changes up again.

    All three live in the target schema next to the run log and are created by on-run-start;
    models/staging/migration_state/ declares them (with the run log and the run claims) as the
    source migration_state.
-#}

{% macro batch_sequence() -%}
    {{ adapter.quote(target.schema) }}.migration_batch_seq
{%- endmacro %}


{% macro change_log_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_change_log
{%- endmacro %}


{% macro watermarks_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_watermarks
{%- endmacro %}


{% macro create_change_tracking(sequence, change_log, change_log_index, watermarks, published_at=false) %}
    {#- The parts that are missing (ensure_state_tables in macros/run_state/run_log.sql decides). -#}
    {%- if sequence %}
    create sequence if not exists {{ batch_sequence() }};
    {%- endif %}
    {%- if change_log %}
    create table if not exists {{ change_log_relation() }} (
        batch bigint not null,
        environment varchar(10) not null,
        group_id integer not null,
        group_type varchar(50) not null,
        group_name varchar(100) not null,
        symbol varchar(50),
        change varchar(10) not null,
        published_at timestamp without time zone
    );
    comment on table {{ change_log_relation() }} is
        'Groups (symbol NULL) and memberships each publish changed, by batch; read by the analyst models, pruned once all have applied it.';
    {%- endif %}
    {%- if published_at %}
    {#- upgrade in place: a change log created before the history models has no time column -#}
    alter table {{ change_log_relation() }}
        add column if not exists published_at timestamp without time zone;
    {%- endif %}
    {%- if change_log_index %}
    create index if not exists migration_change_log_environment_batch
        on {{ change_log_relation() }} (environment, batch);
    {%- endif %}
    {%- if watermarks %}
    create table if not exists {{ watermarks_relation() }} (
        environment varchar(10) not null,
        consumer text not null,
        batch bigint not null,
        primary key (environment, consumer)
    );
    comment on table {{ watermarks_relation() }} is
        'The last change batch each incremental consumer applied, per environment.';
    {%- endif %}
{% endmacro %}


{% macro watermark(consumer) -%}
    {#- The consumer's last applied batch in this run's environment; NULL before its first. -#}
    (
        select watermarks.batch
        from {{ watermarks_relation() }} as watermarks
        where
            watermarks.environment = '{{ migration_environment() }}'
            and watermarks.consumer = '{{ consumer }}'
    )
{%- endmacro %}


{% macro set_watermark(consumer, batch_sql) -%}
    insert into {{ watermarks_relation() }} (environment, consumer, batch)
    select '{{ migration_environment() }}', '{{ consumer }}', applied.batch
    from ({{ batch_sql }}) as applied (batch)
    where applied.batch is not null
    on conflict (environment, consumer) do update
    set batch = greatest({{ watermarks_relation() }}.batch, excluded.batch)
{%- endmacro %}


{% macro prune_change_log() -%}
    {#- Forget the batches every consumer of this environment has applied: the analyst models
        and the history models (each has a watermark; the stocks watermark is no consumer). -#}
    delete from {{ change_log_relation() }}
    where
        environment = '{{ migration_environment() }}'
        and batch <= (
            select min(watermarks.batch)
            from {{ watermarks_relation() }} as watermarks
            where
                watermarks.environment = '{{ migration_environment() }}'
                and watermarks.consumer <> 'definition_groups.stocks'
        )
{%- endmacro %}
