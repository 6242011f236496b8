{#-
    How legacy text is read: the environment, the cache type and a symbol, each in one macro.
    Plain Jinja on purpose (no var, target or adapter): the Python harness renders these same
    macros for the SQL it runs on cache_entries (validation/targets.py, environment_of), so a
    backup, a restore or a check selects exactly the rows the models count.
-#}

{% macro ascii_upper(text_expression) -%}
    {#- a-z upper-cased and nothing else: upper() follows the server's locale ('ıbm' became
        IBM, 'teſt' TEST), so the same row would read differently on another server. -#}
    translate({{ text_expression }}, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
{%- endmacro %}


{% macro ascii_lower(text_expression) -%}
    {#- A-Z lower-cased and nothing else (see ascii_upper). -#}
    translate({{ text_expression }}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
{%- endmacro %}


{% macro trimmed_line(text_expression) -%}
    {#- Surrounding spaces, tabs, carriage returns and line feeds removed. -#}
    btrim({{ text_expression }}, E' \t\r\n')
{%- endmacro %}


{% macro normalised_environment(text_expression) -%}
    {#- The environment a legacy row belongs to: ' prod', E'Prod\t' and 'PROD\r\n' are PROD. -#}
    {{ ascii_upper(trimmed_line(text_expression)) }}
{%- endmacro %}


{% macro normalised_cache_type(text_expression) -%}
    {#- The cache type a legacy row has: 'ETF_HOLDINGS' and E'etf_holdings\n' are etf_holdings. -#}
    {{ ascii_lower(trimmed_line(text_expression)) }}
{%- endmacro %}


{% macro folded_symbol(text_expression) -%}
    {#- A symbol as the migration compares it: surrounding spaces trimmed, a-z upper-cased
        (' aapl' is AAPL; E'aapl\t' keeps its tab and is not a valid symbol). -#}
    {{ ascii_upper('btrim(' ~ text_expression ~ ')') }}
{%- endmacro %}
