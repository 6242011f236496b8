{{
    config(
        pre_hook=[
            "{{ serialize_mart_writes() }}",
            "create sequence if not exists {{ this.schema }}.group_memberships_id_seq",
            "{{ converge_memberships_pre_hook() }}",
        ],
        post_hook=[
            "analyze {{ this }}",
            "{{ record_run_counts(ref('definition_groups'), this) }}",
        ],
    )
}}
-- depends_on: {{ ref('int_group_memberships') }}
-- depends_on: {{ ref('int_migration_exceptions') }}
{#
    definition_groups' post-hook already applied this run's membership diff in its own
    transaction; this model converges whatever is left (nothing in steady state) and
    creates the table, with its contract, on the first build.
#}

{{ membership_changes_sql(
    this if is_incremental() else none,
    ref('definition_groups'),
    this.schema ~ '.group_memberships_id_seq'
) }}
