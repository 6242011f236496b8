"""Property: after any sequence of legacy-source changes, every incremental `dbt build` leaves
the two tables exactly as a fresh build on an empty database would (ids aside), keeps the
ids (and the created/added stamps) of every surviving group and membership, never reuses an
id, rewrites no row whose content did not change, and never touches another environment.

Each step makes 1-3 random changes (tests/support/equivalence.py: symbols added, removed, reordered,
reweighted; entries added, deleted, renamed, re-keyed, duplicated under a second name,
switched to another legacy shape, re-inserted with a NULL updated_at, moved to another or a
misspelt environment; sectors and last_updated stamps changed; and the hostile alphabet of
`wide_changes`: in-place UPDATEs of key, type and environment of any entry, stock_metadata
included; deletes and re-inserts; the two entries that contest the name `etf_late`, in
either arrival order; rows a legacy script inserts into the two tables; universes with
several member lists; any JSON, hypothesis's recursive strategy, in any field; and other
writers in the two tables: a migrated group copied under another name with its provenance
and members, a migrated group's description and metadata edited by hand, another writer's
groups and members updated, added and deleted), then
runs one incremental `dbt build` of DEFAULT or PROD -- one step in four with
`--full-refresh` -- of the two tables, the models upstream of them and of the singular
tests, and those tests: the reconciliation identity, both directions, among them
(support/equivalence.py, STEP_ARGS) -- and checks it against a fresh build of the same
cache (and the same rows of other writers) on an empty database -- where the entry that holds
the contested name is built first, since the holder keeps it whatever its cache row's
stamps -- and against tests/support/parity.py; every row of another writer must be exactly
as its writer left it (same row version).
After every step, group_holdings (the packed rows, refreshed incrementally like the other
analyst tables) equals, row for row, what the migration's rows of the two tables give.
It also proves the membership history: after every step, the history models answer, as of
each earlier step's publication time, exactly what the two tables held right after that step
-- as a whole, and group by group and symbol by symbol through the SQL of `query --as-of`
(tests/support/history.py) -- across incremental and `--full-refresh` steps of both
environments.

The default profile runs 20 sequences of 4 steps on the embedded PostgreSQL 18 (the property's
budget per run) and 6 more on the PostgreSQL 15 service (the same model SQL on both, and the
hostile-value and fuzz tests run on both in full; `make test` runs the two suites side by side
on two cores, and this test is a quarter of the 18 suite); `pytest -m slow` runs 150 sequences of 6
(`PROPERTY_SHARD=k/n` runs shard k of n of them, from seed k, e.g. one per server at once).
Examples are derandomised and nothing is written to a hypothesis database, so a failure
reproduces exactly on the next run. `test_a_build_that_never_deletes_groups_is_caught`
(slow; `pytest tests/test_property_equivalence.py -m slow -k never_deletes`) shows the
property failing, with a one-step minimal example, on a copy of the project whose delete
step is disabled:

    state = IncrementalRuns()
      etf_holdings:SPY (DEFAULT) deleted
    state.change_then_build(changes=[DeleteEntry(pick=0)], dbt_target='default')
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from support.analyst_tables import group_holdings_differences
from support.databases import PROJECT_ROOT, PgServer
from support.equivalence import (
    ENVIRONMENTS,
    Change,
    Harness,
    ProjectCopy,
    PropertyViolation,
    Source,
    break_macro,
    build_outcome,
    check_step,
    copy_project,
    foreign_rows,
    other_environments,
    shared_groups,
    wide_changes,
)
from support.history import check_history, last_run_time, tables_state
from support.legacy_cache import BASE_TIME, published
from support.parity import assert_parity
from support.round_trip import assert_round_trip


def _settings(examples: int, steps: int, **kwargs: Any) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        **kwargs,
    )


DEFAULT_PROFILE = _settings(20, 4)
SECOND_SERVER_PROFILE = _settings(6, 4)
SLOW_PROFILE = _settings(150, 6)


def machine_for(harness: Harness) -> type[RuleBasedStateMachine]:
    class IncrementalRuns(RuleBasedStateMachine):
        """Starts from the built starting cache; each step changes the source, then builds."""

        h: ClassVar[Harness] = harness

        def __init__(self) -> None:
            super().__init__()
            self.conn = self.h.start_example()
            self.source = Source(self.conn, clock=BASE_TIME + timedelta(days=1))
            self.state = published(self.conn)
            self.seen_group_ids = set(self.state.group_ids.values())
            self.seen_membership_ids = set(self.state.membership_ids.values())
            # (when a run published, what the two tables held after it): the history's
            # as-of answer at each of these moments must be what the tables held then
            self.held = [(last_run_time(self.conn, "PROD"), tables_state(self.conn, self.state))]

        @rule(
            changes=st.lists(wide_changes(), min_size=1, max_size=3),
            dbt_target=st.sampled_from(tuple(ENVIRONMENTS)),
            # about one step in four rebuilds the intermediate models from nothing
            full_refresh=st.sampled_from([False, False, False, True]),
        )
        def change_then_build(
            self, changes: list[Change], dbt_target: str, full_refresh: bool
        ) -> None:
            self.h.steps[-1] += 1
            for change in changes:
                note(f"  {change.apply(self.source)}")
            environment = ENVIRONMENTS[dbt_target]
            self.h.start_fresh_build(self.conn, dbt_target)  # runs beside the incremental build
            before = published(self.conn)
            theirs = foreign_rows(self.conn)
            if full_refresh:
                note("  (built with --full-refresh)")
            if build_outcome(self.h, dbt_target, full_refresh=full_refresh) == "guarded":
                # the guard refused a large deletion: nothing may have changed ...
                assert published(self.conn) == before, "the refused run changed rows"
                note("  mass-delete guard refused the run; rerun with allow_mass_delete")
                self.h.build(
                    dbt_target, variables={"allow_mass_delete": True}, full_refresh=full_refresh
                )
            after = published(self.conn)
            assert foreign_rows(self.conn) == theirs, "a build changed another writer's rows"
            assert other_environments(after, environment) == other_environments(
                before, environment
            ), f"a {environment} run changed another environment's rows"
            check_step(
                environment=environment,
                before=before,
                after=after,
                expected=self.h.fresh_build(),
                seen_group_ids=self.seen_group_ids,
                seen_membership_ids=self.seen_membership_ids,
                shared=shared_groups(self.conn),
            )
            # an independent oracle too: every list group equals its legacy JSON minus the
            # elements the run recorded as errors (tests/support/parity.py)
            assert_parity(self.conn, environment)
            # the packed rows (group_holdings) after this run's incremental refresh are what
            # the two tables give now: members, order, weights, positions (issue 30)
            assert group_holdings_differences(self.conn, environment) == []
            # the round trip: the compatibility relation gives the legacy values back
            # (tests/support/round_trip.py; its dbt test ran in the build)
            assert_round_trip(self.conn, environment)
            self.seen_group_ids |= set(after.group_ids.values())
            self.seen_membership_ids |= set(after.membership_ids.values())
            self.state = after
            self.held.append(
                (last_run_time(self.conn, environment), tables_state(self.conn, after))
            )
            check_history(self.conn, self.held)

        def teardown(self) -> None:
            self.conn.close()

    return IncrementalRuns


def _harness(
    pg_server: PgServer,
    database: str,
    work_dir: Path,
    manifests: dict[str, Any],
    project_dir: Path = PROJECT_ROOT,
    parallel: bool = True,
) -> Harness:
    incremental = ProjectCopy(
        pg_server.database_settings(database), work_dir, manifests, project_dir=project_dir
    )
    harness = Harness(
        pg_server,
        incremental,
        template_name=f"{database}_template",
        reference_name=f"{database}_ref",
        work_dir=work_dir,
        project_dir=project_dir,
        parallel=parallel,
    )
    harness.create_template()
    return harness


@pytest.fixture(scope="module")
def harness(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[Harness]:
    harness = _harness(pg_server, migration_database, dbt_work_dir, _session_manifests)
    yield harness
    harness.drop()
    pg_server.drop_database(migration_database)


def _run(harness: Harness, profile: settings, shard: tuple[int, int] | None = None) -> None:
    """Every example runs the profile's full number of steps: hypothesis otherwise cuts some
    sequences short (its mutator splices in early stops), and CI promises its sequences in full.
    Failures then shrink to sequences of that length, with the simplest possible steps.

    A shard (k of n) draws from its own fixed seed, k: the shards draw different sequences,
    and each reproduces exactly on a rerun."""
    started = time.perf_counter()
    machine = machine_for(harness)
    if shard is not None:
        machine = seed(shard[0])(machine)
        print(f"property: shard {shard[0]} of {shard[1]}, {profile.max_examples} sequences")
    run_state_machine_as_test(machine, settings=profile, _min_steps=profile.stateful_step_count - 1)
    print(
        f"{harness.examples} sequences, steps {harness.steps}, {harness.builds} incremental"
        f" and {harness.reference_builds} reference builds in {time.perf_counter() - started:.0f} s"
    )


def test_incremental_builds_equal_fresh_builds(harness: Harness, pg_server: PgServer) -> None:
    profile = DEFAULT_PROFILE if pg_server.kind == "embedded" else SECOND_SERVER_PROFILE
    _run(harness, profile)
    full_sequences = [s for s in harness.steps if s == profile.stateful_step_count]
    assert len(full_sequences) >= profile.max_examples, harness.steps


def property_shard() -> tuple[int, int] | None:
    """PROPERTY_SHARD=k/n: run shard k of n of the slow profile (e.g. one per server at once)."""
    value = os.environ.get("PROPERTY_SHARD", "").strip()
    if not value:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        pytest.fail(f"PROPERTY_SHARD={value!r}: write k/n with 1 <= k <= n, e.g. 1/2")
    return index, count


@pytest.mark.slow
def test_incremental_builds_equal_fresh_builds_many_sequences(harness: Harness) -> None:
    shard = property_shard()
    profile = SLOW_PROFILE
    if shard is not None:  # its share of the sequences
        profile = settings(profile, max_examples=math.ceil(profile.max_examples / shard[1]))
    _run(harness, profile, shard)
    full_sequences = [s for s in harness.steps if s == profile.stateful_step_count]
    assert len(full_sequences) >= profile.max_examples, harness.steps


@pytest.mark.slow
def test_a_build_that_never_deletes_groups_is_caught(
    pg_server: PgServer, migration_database: str, dbt_work_dir: Path, tmp_path: Path
) -> None:
    """Mutation test of the property: disable the delete step in a copy of the project."""
    broken = copy_project(tmp_path / "broken")
    break_macro(broken, "delete_removed_groups", "\n    select 1 /* deliberately broken */\n")

    database = f"{migration_database}_broken"
    harness = _harness(pg_server, database, dbt_work_dir, {}, broken)
    try:
        with pytest.raises(PropertyViolation) as failure:
            run_state_machine_as_test(
                machine_for(harness),
                settings=_settings(20, 4, phases=(Phase.generate, Phase.shrink)),
            )
    finally:
        harness.drop()
        pg_server.drop_database(database)
    report = "\n".join(getattr(failure.value, "__notes__", []))
    print(report)
    steps = [line for line in report.splitlines() if "change_then_build(" in line]
    assert len(steps) == 1, f"expected a one-step minimal example:\n{report}"
    assert "extra" in str(failure.value)
