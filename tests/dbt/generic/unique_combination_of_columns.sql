{% test unique_combination_of_columns(model, combination_of_columns) %}
{#- Rows whose combination of the given columns appears more than once. -#}

with

duplicated_combinations as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1

)

select * from duplicated_combinations

{% endtest %}
