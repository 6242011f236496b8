{#-
    Every ordered pair of ETFs of an environment that share at least one symbol, in both
    directions, so a lookup by (etf, other_etf) needs no OR.
-#}
{%- set environment = migration_environment() -%}

with

definition_groups as (

    select * from {{ ref('definition_groups') }}
    where environment = '{{ environment }}' and type = 'ETF'

),

group_memberships as (

    select * from {{ ref('group_memberships') }}

),

etf_holdings as (

    select
        definition_groups.environment,
        definition_groups.name as etf,
        group_memberships.symbol,
        group_memberships.weight
    from group_memberships
    inner join definition_groups
        on group_memberships.group_id = definition_groups.id

),

etf_sizes as (

    select
        etf,
        count(*) as holdings
    from etf_holdings
    group by etf

),

shared_holdings as (

    select
        this_etf.environment,
        this_etf.etf,
        other_etf.etf as other_etf,
        count(*) as shared_symbols,
        count(*) filter (
            where this_etf.weight is not null and other_etf.weight is not null
        ) as weighted_shared_symbols,
        sum(
            case
                when this_etf.weight is not null and other_etf.weight is not null
                    then least(this_etf.weight, other_etf.weight)
            end
        ) as weighted_overlap
    from etf_holdings as this_etf
    inner join etf_holdings as other_etf
        on
            this_etf.symbol = other_etf.symbol
            and this_etf.etf <> other_etf.etf
    group by this_etf.environment, this_etf.etf, other_etf.etf

),

final as (

    select
        shared_holdings.environment,
        shared_holdings.etf,
        shared_holdings.other_etf,
        shared_holdings.shared_symbols,
        this_size.holdings as etf_holdings,
        other_size.holdings as other_etf_holdings,
        round(shared_holdings.shared_symbols::numeric / this_size.holdings, 4) as share_of_etf,
        round(shared_holdings.shared_symbols::numeric / other_size.holdings, 4) as share_of_other_etf,
        shared_holdings.weighted_shared_symbols,
        shared_holdings.weighted_overlap
    from shared_holdings
    inner join etf_sizes as this_size
        on shared_holdings.etf = this_size.etf
    inner join etf_sizes as other_size
        on shared_holdings.other_etf = other_size.etf

)

select * from final
