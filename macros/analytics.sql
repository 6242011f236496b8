{% macro replace_environment_rows() %}
    {#-
        Pre-hook of the analytics tables.  They hold every environment, and each run rebuilds
        only its own environment's rows: delete them here, in the model's transaction, and the
        append that follows inserts the new ones (readers see the swap at commit).
    -#}
    {%- if is_incremental() -%}
        delete from {{ this }} where environment = '{{ migration_environment() }}'
    {%- else -%}
        select 1 /* first build */
    {%- endif -%}
{% endmacro %}
