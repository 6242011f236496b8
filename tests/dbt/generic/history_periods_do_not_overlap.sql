{% test history_periods_do_not_overlap(model, key_columns) %}
{#-
    Rows of a history model whose period ends before it starts, or overlaps the key's previous
    period (including a second open row: an open period overlaps everything after it).
-#}

with

periods as (

    select
        {{ key_columns | join(', ') }},
        valid_from,
        valid_to,
        lag(valid_to) over (
            partition by {{ key_columns | join(', ') }} order by valid_from
        ) as previous_valid_to,
        lag(valid_from) over (
            partition by {{ key_columns | join(', ') }} order by valid_from
        ) as previous_valid_from
    from {{ model }}

)

select *
from periods
where
    valid_to < valid_from
    or (previous_valid_from is not null and (previous_valid_to is null or previous_valid_to > valid_from))

{% endtest %}
