{#-
    How a legacy value is read: which group an entry names, where its member lists are, what
    one list element says, which sector a stock's label names.  Each rule once, in plain Jinja
    (no var, target or adapter) like normalisation.sql: the models call these macros, and the
    harness renders the same text for the shadow reads and the round trip
    (validation/targets.py, rule), so a check can never read the cache differently from a build.
-#}

{% macro group_name_of(entry_key, name_prefix) -%}
    {#- The group an entry names: its key, with the type's name_prefix in front unless the key
        already starts with it (an ETF universe 'growth' is the CUSTOM group 'etf_growth'). -#}
    case
        when coalesce({{ name_prefix }}, '') = '' then {{ entry_key }}
        when starts_with({{ entry_key }}, {{ name_prefix }}) then {{ entry_key }}
        else {{ name_prefix }} || {{ entry_key }}
    end
{%- endmacro %}


{% macro member_list_elements(value, member_source) -%}
    {#-
        A subquery: every element of the value's member lists as (element_position, element),
        the places member_source names ('holdings+symbols…'; '(value)' a plain array value) in
        its order, one list after the other, numbered from 1.
    -#}
    (
        select
            (row_number() over (order by places.place_order, listed.element_order))::integer
                as element_position,
            listed.element
        from
            unnest(string_to_array({{ member_source }}, '+'))
            with ordinality as places (place, place_order)
        cross join lateral jsonb_array_elements(
            case
                when places.place = '(value)' and jsonb_typeof({{ value }}) = 'array'
                    then {{ value }}
                when places.place <> '(value)' and jsonb_typeof({{ value }}) = 'object'
                    and jsonb_typeof({{ value }} -> places.place) = 'array'
                    then {{ value }} -> places.place
                else '[]'::jsonb
            end
        ) with ordinality as listed (element, element_order)
    )
{%- endmacro %}


{% macro element_symbol_text(element) -%}
    {#- The symbol an element names, as written: a string element itself, or an object's
        `symbol` (else `ticker`) string; NULL when it names none (an unreadable element). -#}
    case jsonb_typeof({{ element }})
        when 'string' then {{ element }} #>> '{}'
        when 'object' then coalesce(
            {{ json_text_at(element, 'symbol') }},
            {{ json_text_at(element, 'ticker') }}
        )
    end
{%- endmacro %}


{% macro element_weight(element) -%}
    {#- An element's weight as a fraction rounded to 4 places: `weight` (0 to 1) or else
        `weight_pct` (0 to 100); NULL when it has none or it is not a number in range. -#}
    case
        when jsonb_typeof({{ element }}) <> 'object' then null
        when {{ element }} ? 'weight' then case
            when jsonb_typeof({{ element }} -> 'weight') = 'number' then case
                when ({{ element }} ->> 'weight')::numeric between 0 and 1
                    then round(({{ element }} ->> 'weight')::numeric, 4)
            end
        end
        when {{ element }} ? 'weight_pct' then case
            when jsonb_typeof({{ element }} -> 'weight_pct') = 'number' then case
                when ({{ element }} ->> 'weight_pct')::numeric between 0 and 100
                    then round(({{ element }} ->> 'weight_pct')::numeric / 100, 4)
            end
        end
    end
{%- endmacro %}


{% macro element_attributes(element) -%}
    {#- What else an object element says: its keys but the symbol and the weight. -#}
    case
        when jsonb_typeof({{ element }}) = 'object'
            then {{ element }} - 'symbol' - 'ticker' - 'weight' - 'weight_pct'
        else '{}'::jsonb
    end
{%- endmacro %}


{% macro member_element_reading(element) -%}
    {#- What the migration reads from one list element, as [symbol, weight, other keys]: the
        form two elements are compared in (a NULL symbol: unreadable). -#}
    jsonb_build_array(
        {{ folded_symbol(element_symbol_text(element)) }},
        {{ element_weight(element) }},
        {{ element_attributes(element) }}
    )
{%- endmacro %}


{% macro value_without_member_lists(value, member_source) -%}
    {#- The value minus every member list member_source names: {} for a plain array. -#}
    case
        when jsonb_typeof({{ value }}) = 'object'
            then {{ value }} - string_to_array({{ member_source }}, '+')
        else '{}'::jsonb
    end
{%- endmacro %}


{% macro sector_label_matches(label, sector_key, sector_name) -%}
    {#- A stock's sector label names a sector by its key, its display name or its key with
        spaces for underscores, in any letter case. -#}
    lower({{ label }}) in (
        lower({{ sector_key }}),
        lower({{ sector_name }}),
        lower(replace({{ sector_key }}, '_', ' '))
    )
{%- endmacro %}


{% macro sector_match_order(label, sector_key) -%}
    {#- When a label matches several sectors: the one it names by key first, then by key. -#}
    (lower({{ label }}) = lower({{ sector_key }})) desc, {{ sector_key }}
{%- endmacro %}
