{#- The group_memberships rows this run's environment should hold, keyed by group identity. -#}
{{ config(materialized='view') }}

with

list_memberships as (

    {{ list_membership_rows() | indent(4) }}

),

sector_memberships as (

    {{ sector_membership_rows() | indent(4) }}

),

final as (

    select * from list_memberships
    union all
    select * from sector_memberships

)

select * from final
