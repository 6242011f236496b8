{#-
    Reconciliation identity: every element of every mapped cache entry of this environment
    is a membership in the published tables or a recorded exception (per group, source
    elements = memberships + dropped elements), every entry that is not published has an
    entry-level exception, every stock_metadata entry is a SECTOR member or an exception, and
    every entry with an invalid environment is reported.  cache_entry_reconciliation counts
    elements from the legacy JSON itself; this test fails on each entry it cannot account for.
-#}

select
    cache_entry_id,
    cache_type,
    entry_key,
    raw_environment,
    detail
from {{ ref('cache_entry_reconciliation') }}
where status = 'unexplained'
