{#-
    Publishing, step 1 (first pre-hook of definition_groups and group_memberships, and of
    every analyst model): the transaction advisory lock that serialises writes to the marts.
-#}

{% macro serialize_mart_writes(tables='marts') %}
    {#-
        Two runs never write the same mart tables at the same time (the lock is held until
        commit).  The two contract tables share one lock, since publishing writes both; each
        analyst table has its own, so the analyst models of one run do not wait for each other.
    -#}
    select pg_advisory_xact_lock(hashtext('sprint59_migration.{{ tables }}'))
{% endmacro %}
