{#- The group_memberships rows this run's environment should hold, keyed by group identity. -#}

with

member_elements as (

    select * from {{ ref('int_member_elements') }}
    where element_problem is null

),

final as (

    select
        environment,
        group_type,
        source_type,
        source_key,
        symbol,
        weight::numeric(5, 4) as weight,
        membership_metadata as metadata

    from member_elements

)

select * from final
