{#-
    The group_memberships rows this environment should hold, keyed by group identity
    (group_type, source_type, source key), from their two sources: member lists
    (int_member_elements) and stock sectors (int_stock_sectors).  int_group_memberships is
    their union, which group_memberships' first build inserts; the membership diff
    (int_group_membership_changes) reads the two filtered to what a run changed.
-#}

{% macro list_membership_rows() -%}
    select
        member_elements.environment,
        member_elements.group_type,
        member_elements.source_type,
        member_elements.source_key,
        member_elements.symbol,
        member_elements.weight::numeric(5, 4) as weight,
        member_elements.membership_metadata as metadata
    from {{ ref('int_member_elements') }} as member_elements
    where member_elements.element_problem is null
{%- endmacro %}


{% macro sector_membership_rows() -%}
    select
        sector_entries.environment,
        'SECTOR'::text as group_type,
        sector_entries.cache_type as source_type,
        sector_entries.entry_key as source_key,
        stock_sectors.symbol,
        null::numeric(5, 4) as weight,
        jsonb_strip_nulls(jsonb_build_object('industry', stock_sectors.industry)) as metadata
    from {{ ref('int_stock_sectors') }} as stock_sectors
    inner join {{ ref('int_group_entries') }} as sector_entries
        on
            sector_entries.group_type = 'SECTOR'
            and sector_entries.is_published
            and stock_sectors.sector_key = sector_entries.entry_key
    where not stock_sectors.is_removed and stock_sectors.stock_problem is null
{%- endmacro %}
