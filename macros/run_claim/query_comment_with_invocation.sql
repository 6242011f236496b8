{#-
    The query comment of every statement (dbt_project.yml, query-comment): it names the dbt
    invocation, so a run that finds the environment claimed can tell whether the holder is
    still running anything (claim_environment_run).
-#}

{% macro query_comment_with_invocation(connection_name, node) -%}
    {#- dbt's default query comment plus the invocation id, so other runs can see this one. -#}
    {%- set comment = {
        'app': 'dbt',
        'dbt_version': dbt_version,
        'profile_name': target.get('profile_name'),
        'target_name': target.get('target_name'),
        'invocation_id': invocation_id,
    } -%}
    {%- if node is not none -%}
        {%- do comment.update({'node_id': node.unique_id}) -%}
    {%- else -%}
        {%- do comment.update({'connection_name': connection_name}) -%}
    {%- endif -%}
    {{ return(tojson(comment)) }}
{%- endmacro %}
