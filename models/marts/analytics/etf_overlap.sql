{#-
    Every ordered pair of ETFs of an environment that share at least one symbol, in both
    directions, so a lookup by (etf, other_etf) needs no OR.  An incremental run recomputes
    the pairs of the ETFs the change log names (against every other ETF, and mirrored), and
    drops the pairs of ETFs that are gone or were renamed.
-#}
{{
    config(
        pre_hook="{{ replace_environment_rows(
            'etf in (' ~ changed_etf_names_sql() ~ ') or other_etf in (' ~ changed_etf_names_sql() ~ ')'
            ~ ' or etf not in (' ~ current_etf_names_sql() ~ ')'
            ~ ' or other_etf not in (' ~ current_etf_names_sql() ~ ')'
        ) }}",
    )
}}
{%- set environment = migration_environment() -%}
{%- set rebuild = analytics_rebuilds_environment() -%}

with

ledger_groups as (

    select group_id from {{ ref('stg_migration_state__ledger_groups') }}
    where environment = '{{ environment }}' and group_type = 'ETF'

),

ledger_memberships as (

    select membership_id from {{ ref('stg_migration_state__ledger_memberships') }}

),

etf_groups as (

    -- the migration's ETFs (its ledger): another writer's rows stay in the two tables
    select * from {{ ref('definition_groups') }}
    where
        environment = '{{ environment }}'
        and type = 'ETF'
        and id in (select ledger_groups.group_id from ledger_groups)

),

changed_etf_groups as (

    select * from etf_groups
    {%- if not rebuild %}
    where id in ({{ changed_group_ids_sql('ETF') }})
    {%- endif %}

),

group_memberships as not materialized (

    -- read twice below: inlined, so each read can use its own index (group_id, symbol);
    -- the migration's memberships only, as for the groups
    select * from {{ ref('group_memberships') }}
    where id in (select ledger_memberships.membership_id from ledger_memberships)

),

etf_sizes as (

    select
        name as etf,
        member_count as holdings
    from {{ ref('group_summary') }}
    where environment = '{{ environment }}' and type = 'ETF'

),

changed_etf_holdings as (

    select
        changed_etf_groups.name as etf,
        group_memberships.symbol,
        group_memberships.weight
    from group_memberships
    inner join changed_etf_groups
        on group_memberships.group_id = changed_etf_groups.id

),

etf_holdings as (

    select
        etf_groups.name as etf,
        group_memberships.symbol,
        group_memberships.weight
    from group_memberships
    inner join etf_groups
        on group_memberships.group_id = etf_groups.id

),

shared_holdings as (

    select
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

    from changed_etf_holdings as this_etf
    inner join etf_holdings as other_etf
        on
            this_etf.symbol = other_etf.symbol
            and this_etf.etf <> other_etf.etf
    group by this_etf.etf, other_etf.etf

),

all_pairs as (

    select * from shared_holdings
    {%- if not rebuild %}

    -- the same measures seen from the unchanged ETF's side
    union all

    select
        other_etf as etf,
        etf as other_etf,
        shared_symbols,
        weighted_shared_symbols,
        weighted_overlap
    from shared_holdings
    where other_etf not in (select changed_etf_groups.name from changed_etf_groups)
    {%- endif %}

),

final as (

    select
        '{{ environment }}'::varchar(10) as environment,
        all_pairs.etf,
        all_pairs.other_etf,
        all_pairs.shared_symbols,
        this_size.holdings as etf_holdings,
        other_size.holdings as other_etf_holdings,
        round(all_pairs.shared_symbols::numeric / this_size.holdings, 4) as share_of_etf,
        round(all_pairs.shared_symbols::numeric / other_size.holdings, 4) as share_of_other_etf,
        all_pairs.weighted_shared_symbols,
        all_pairs.weighted_overlap

    from all_pairs
    inner join etf_sizes as this_size
        on all_pairs.etf = this_size.etf
    inner join etf_sizes as other_size
        on all_pairs.other_etf = other_size.etf

)

select * from final
