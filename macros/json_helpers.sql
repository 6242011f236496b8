{% macro json_array_at(json_column, key) -%}
    {#- The array under `key` of a JSON object, or NULL for any other shape (never raises). -#}
    case
        when jsonb_typeof({{ json_column }}) = 'object'
            then case
                when jsonb_typeof({{ json_column }} -> '{{ key }}') = 'array'
                    then {{ json_column }} -> '{{ key }}'
            end
    end
{%- endmacro %}


{% macro json_text_at(json_column, key) -%}
    {#- The string under `key` of a JSON object, or NULL for any other shape (never raises). -#}
    case
        when jsonb_typeof({{ json_column }}) = 'object'
            then case
                when jsonb_typeof({{ json_column }} -> '{{ key }}') = 'string'
                    then {{ json_column }} ->> '{{ key }}'
            end
    end
{%- endmacro %}


{% macro parse_iso_timestamp(text_expression) -%}
    {#-
        An ISO-8601 date or timestamp text as a UTC `timestamp`, or NULL when the text is not a
        real calendar instant.  PostgreSQL 15 has no pg_input_is_valid, and one bad cast (say
        '2025-02-30') would abort the whole build.  PostgreSQL does not promise the order in
        which AND operands run, so each guard is a nested CASE: a cast only ever sees text
        that passed the checks before it.
    -#}
    {%- set t = text_expression -%}
    case
        when {{ t }} ~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$'
            then case
                when substr({{ t }}, 1, 4)::int between 1 and 9999
                    and substr({{ t }}, 6, 2)::int between 1 and 12
                    and coalesce(nullif(substr({{ t }}, 12, 2), '')::int, 0) < 24
                    and coalesce(nullif(substr({{ t }}, 15, 2), '')::int, 0) < 60
                    and coalesce(nullif(substr({{ t }}, 18, 2), '')::int, 0) < 60
                    then case
                        when substr({{ t }}, 9, 2)::int between 1 and extract(day from (
                            make_date(substr({{ t }}, 1, 4)::int, substr({{ t }}, 6, 2)::int, 1)
                            + interval '1 month - 1 day'
                        ))
                            then case
                                when {{ t }} ~ '\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$'
                                    then ({{ t }})::timestamptz at time zone 'UTC'
                                else ({{ t }})::timestamp
                            end
                    end
            end
    end
{%- endmacro %}


{% macro is_valid_symbol(symbol_expression) -%}
    {#- 1–10 characters of A–Z, 0–9, '.' and '-', starting with a letter or digit. -#}
    coalesce({{ symbol_expression }} ~ '^[A-Z0-9][A-Z0-9.-]{0,9}$', false)
{%- endmacro %}
