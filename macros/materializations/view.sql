{#-
    The project's view materialization on PostgreSQL: a view whose columns keep their names,
    types and order (new ones may follow) is replaced in place with `create or replace view`.
    dbt's own view materialization instead renames the old view away and drops it with
    cascade, which drops every view built on it (ours until the run rebuilds them, a user's
    for good) and, when two threads replace two views that share a dependent view, makes
    them deadlock on that dependent.  A view whose columns changed (a release that reshapes
    it), or a relation that is not a view, takes dbt's own path.
-#}
{% materialization view, adapter='postgres' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is none
            or not existing_relation.is_view
            or not view_columns_kept(existing_relation, sql) -%}
        {{ return(materialization_view_default()) }}
    {%- endif -%}

    {%- set target_relation = this.incorporate(type='view') -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('main') -%}
        {{ get_replace_view_sql(target_relation, sql) }}
    {%- endcall %}

    {% do apply_grants(target_relation, config.get('grants'), should_revoke=true) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro view_columns_kept(existing_relation, sql) %}
    {#-
        Whether PostgreSQL's `create or replace view` accepts the model's new query for the
        existing view: every existing column is still there, at the same place, with the
        same name, type, type modifier and collation.  The query is described by a temporary
        view (this session's own schema, dropped at once) and both are read from pg_attribute,
        the catalog PostgreSQL compares itself.  Without the TEMPORARY privilege on the
        database there is nothing to compare with: dbt's own path.
    -#}
    {%- set probe = 'sprint59_view_probe_' ~ local_md5(existing_relation.identifier)[:12] -%}
    {%- set existing_name = existing_relation.include(database=false) | string -%}
    {%- call statement('may_create_temporary', fetch_result=true) -%}
        select has_database_privilege(current_database(), 'TEMPORARY')
    {%- endcall -%}
    {%- if not load_result('may_create_temporary')['data'][0][0] -%}
        {{ return(false) }}
    {%- endif -%}
    {%- call statement('describe_new_query') -%}
        create temporary view {{ adapter.quote(probe) }} as (
            {{ sql }}
        )
    {%- endcall -%}
    {%- call statement('compare_view_columns', fetch_result=true) -%}
        with existing_columns as (
            select attnum, attname, atttypid, atttypmod, attcollation
            from pg_catalog.pg_attribute
            where
                attrelid = to_regclass({{ sql_literal(existing_name) }})
                and attnum > 0
                and not attisdropped
        ),

        new_columns as (
            select attnum, attname, atttypid, atttypmod, attcollation
            from pg_catalog.pg_attribute
            where
                attrelid = to_regclass({{ sql_literal('pg_temp.' ~ adapter.quote(probe)) }})
                and attnum > 0
                and not attisdropped
        )

        select
            exists (select from existing_columns)
            and not exists (
                select
                from existing_columns
                left join new_columns using (attnum, attname, atttypid, atttypmod, attcollation)
                where new_columns.attnum is null
            )
    {%- endcall -%}
    {%- call statement('forget_new_query') -%}
        drop view pg_temp.{{ adapter.quote(probe) }}
    {%- endcall -%}
    {{ return(load_result('compare_view_columns')['data'][0][0]) }}
{% endmacro %}
