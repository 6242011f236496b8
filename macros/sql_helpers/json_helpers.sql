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
        real calendar instant PostgreSQL accepts.  PostgreSQL 15 has no pg_input_is_valid, and
        one bad cast ('2025-02-30', or an offset beyond +-15:59 such as '+16:00') aborts the
        whole build, so every field is checked before any cast: year 1-9999, month 1-12, a day
        that exists in that month, hour < 24, minute and second < 60, offset hours <= 15 and
        offset minutes < 60.  PostgreSQL does not promise the order in which AND operands run,
        so each guard is a nested CASE: a cast only ever sees text that passed the checks
        before it.  The fields are captured once (regexp_match) in a scalar subquery.
    -#}
    (
        select
            case
                when iso.parts is not null
                    then case
                        when iso.parts[1]::int between 1 and 9999
                            and iso.parts[2]::int between 1 and 12
                            and coalesce(iso.parts[4]::int, 0) < 24
                            and coalesce(iso.parts[5]::int, 0) < 60
                            and coalesce(iso.parts[6]::int, 0) < 60
                            and coalesce(iso.parts[9]::int, 0) <= 15
                            and coalesce(iso.parts[10]::int, 0) < 60
                            then case
                                when iso.parts[3]::int between 1 and extract(day from (
                                    make_date(iso.parts[1]::int, iso.parts[2]::int, 1)
                                    + interval '1 month - 1 day'
                                ))
                                    then case
                                        when iso.parts[7] is not null
                                            then iso.stamp::timestamptz at time zone 'UTC'
                                        else iso.stamp::timestamp
                                    end
                            end
                    end
            end
        from (
            select
                {{ text_expression }} as stamp,
                regexp_match(
                    {{ text_expression }},
                    '^(\d{4})-(\d{2})-(\d{2})'
                    '(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|([+-])(\d{2})(?::?(\d{2}))?)?)?$'
                ) as parts
        ) as iso
    )
{%- endmacro %}


{% macro white_space_characters() -%}
    {#- The inside of a regular-expression bracket: white space, ASCII and Unicode (NBSP, the
        U+2000 spaces, line and paragraph separators, ideographic space, ...). -#}
    \s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000
{%- endmacro %}


{% macro format_characters() -%}
    {#- The inside of a regular-expression bracket: characters that show nothing and are not
        white space: format characters (soft hyphen, zero-width space / joiners, direction
        marks and isolates, word joiner, variation selectors, BOM, ...) and the Hangul
        fillers. -#}
    \u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb
{%- endmacro %}


{% macro is_plausible_stamp(stamp_expression) -%}
    {#-
        True for a NULL stamp or one (a UTC `timestamp`) between year 1 and this run's time;
        false for a stamp after the run or before year 1, which dbt source freshness ignores
        (models/staging/legacy/_legacy.yml).
    -#}
    coalesce({{ stamp_expression }} between '0001-01-01 00:00:00' and {{ run_timestamp() }}, true)
{%- endmacro %}


{% macro invisible_characters() -%}
    {#- A regular-expression bracket of the characters that show nothing: white space and
        format characters. -#}
    '[{{ white_space_characters() }}{{ format_characters() }}]'
{%- endmacro %}


{% macro is_invisible(text_expression) -%}
    {#- True when the text is empty once every invisible character is removed (NULL counts). -#}
    coalesce(regexp_replace({{ text_expression }}, {{ invisible_characters() }}, '', 'g') = '', true)
{%- endmacro %}


{% macro comparable_name(text_expression) -%}
    {#-
        A name as a person reads it, the form two names are compared in: Unicode NFC (so a
        precomposed and a decomposed 'café' are one name), format characters removed wherever
        they are (a zero-width space inside 'ZW?X' shows nothing), surrounding white space
        trimmed.  Letter case is kept: names that differ only by case are two names.
        normalize() needs a UTF-8 database; in any other encoding the text is compared as
        stored, never an error.
    -#}
    regexp_replace(
        regexp_replace(
            case
                when current_setting('server_encoding') = 'UTF8' then normalize({{ text_expression }}, nfc)
                else {{ text_expression }}
            end,
            '[{{ format_characters() }}]', '', 'g'
        ),
        '^[{{ white_space_characters() }}]+|[{{ white_space_characters() }}]+$', '', 'g'
    )
{%- endmacro %}


{% macro is_valid_symbol(symbol_expression) -%}
    {#- 1–10 characters of A–Z, 0–9, '.' and '-', starting with a letter or digit. -#}
    coalesce({{ symbol_expression }} ~ '^[A-Z0-9][A-Z0-9.-]{0,9}$', false)
{%- endmacro %}
