"""Nothing changed, nothing run (validation/fingerprint.py, docs/design.md §12).

The property: for every change of the alphabet of tests/test_property_equivalence.py
(support/equivalence.py, ``wide_changes``: symbols, entries added, deleted, renamed, re-keyed,
moved; in-place UPDATEs of key, type and environment, stock_metadata included; re-inserts;
arbitrary JSON; rows of other writers in the two tables, a migrated group edited by hand),
plus an UPDATE that rewrites a row without changing it or its stamps and a truncate and
reload of the same content, the fingerprint of an environment changes exactly when what
that environment's build reads changed -- as an independent oracle reads it here: its
``cache_entries`` rows (and those of no known environment), its rows of the two tables and its
ledger, each row with its row version -- and stays the same after a no-op (a read, VACUUM
FREEZE, ANALYZE).  A reload of the same content changes the fingerprint (the rows are new
row versions): a build then runs and changes nothing, which is safe; only a false "nothing
changed" would not be.

Then what no source change shows: rollback, restore, a dropped table, code, options and
variables; and the harness end to end: a build that changed the tables records nothing, the
next one records, the one after says "nothing changed since run N" and exits 0 without
importing dbt; one changed row builds again; --force builds.

The default profile runs 12 sequences of 6 steps per server; ``-m slow`` runs 100 of 10.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.equivalence import Change, Source, copy_project, starting_cache, wide_changes
from support.legacy_cache import BASE_TIME, LegacyCache

from validation import fingerprint, operations, targets

ENVIRONMENTS = ("DEFAULT", "PROD")


def build_once(project: DbtProject) -> None:
    """The property's starting cache (DEFAULT and PROD), built for both environments."""
    with project.connect() as conn:
        starting_cache(LegacyCache(conn).create())
    project.build("default")
    project.build("prod")


def inputs(environment: str, *, args: tuple[str, ...] = ()) -> fingerprint.BuildInputs:
    return fingerprint.BuildInputs(environment.lower(), environment, "public", "public", args)


def fingerprints(conn: psycopg.Connection) -> dict[str, str]:
    return {e: fingerprint.compute(conn, inputs(e)).digest for e in ENVIRONMENTS}


# --- the oracle: what a build of an environment reads, row by row -----------------------------

ORACLE_CACHE_SQL = """
select id, xmin::text, type, name, key, environment, description, created_at::text,
    updated_at::text, value::text
from public.cache_entries order by id
"""
ORACLE_GROUPS_SQL = """
select g.environment, g.id, g.xmin::text, g::text from public.definition_groups g order by g.id
"""
ORACLE_MEMBERSHIPS_SQL = """
select g.environment, m.id, m.xmin::text, m::text
from public.group_memberships m join public.definition_groups g on g.id = m.group_id
order by m.id
"""
ORACLE_LEDGER_SQL = """
select l.environment, l::text, array(
    select lm::text from public.migration_ledger_memberships lm
    where lm.group_id = l.group_id order by lm.membership_id)
from public.migration_ledger_groups l order by l.group_id
"""


def _environment_of(raw: str) -> str | None:
    normalised = raw.strip(" \t\r\n").upper()
    return normalised if normalised in targets.ENVIRONMENTS else None


def read_by(conn: psycopg.Connection, environment: str) -> tuple[Any, ...]:
    """Everything of the database that a build of ``environment`` reads, independently of
    the fingerprint's SQL: its cache rows and those of no known environment, its groups,
    their memberships and its ledger, each row whole and with its row version."""
    cache = [
        row for row in conn.execute(ORACLE_CACHE_SQL).fetchall()
        if _environment_of(row[5]) in (environment, None)
    ]  # fmt: skip
    groups = [r[1:] for r in conn.execute(ORACLE_GROUPS_SQL).fetchall() if r[0] == environment]
    memberships = [
        r[1:] for r in conn.execute(ORACLE_MEMBERSHIPS_SQL).fetchall() if r[0] == environment
    ]
    ledger = [r[1:] for r in conn.execute(ORACLE_LEDGER_SQL).fetchall() if r[0] == environment]
    return tuple(cache), tuple(groups), tuple(memberships), tuple(ledger)


# --- changes beyond the equivalence property's alphabet ---------------------------------------


@dataclass(frozen=True)
class TouchRow(Change):
    """An UPDATE that rewrites a row to what it was: no stamp bump, no new content."""

    pick: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to touch"
        source.conn.execute(
            "update public.cache_entries set value = value where id = %s", (row.id,)
        )
        return f"{row.type}:{row.key} ({row.environment}) rewritten unchanged, same stamps"


@dataclass(frozen=True)
class TruncateAndReload(Change):
    """The whole table truncated and loaded again with the same rows, ids included."""

    def apply(self, source: Source) -> str:
        with source.conn.transaction():
            source.conn.execute("create temporary table reload as table public.cache_entries")
            source.conn.execute("truncate public.cache_entries")
            source.conn.execute("insert into public.cache_entries select * from reload")
            source.conn.execute("drop table reload")
        return "cache_entries truncated and reloaded with the same rows"


@dataclass(frozen=True)
class NoOp(Change):
    """Things that change nothing a build reads: a read, VACUUM (FREEZE), ANALYZE."""

    kind: str

    def apply(self, source: Source) -> str:
        statement = {
            "read": "select count(*) from public.cache_entries",
            "vacuum freeze": "vacuum (freeze) public.cache_entries",
            "analyze": "analyze public.definition_groups",
            "vacuum memberships": "vacuum public.group_memberships",
        }[self.kind]
        source.conn.execute(statement)
        return f"no-op: {self.kind}"


def fingerprint_alphabet() -> st.SearchStrategy[Change]:
    picks = st.integers(min_value=0, max_value=40)
    return st.one_of(
        wide_changes(),
        st.builds(TouchRow, pick=picks),
        st.just(TruncateAndReload()),
        st.builds(
            NoOp, kind=st.sampled_from(["read", "vacuum freeze", "analyze", "vacuum memberships"])
        ),
    )


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


DEFAULT_PROFILE = _settings(12, 6)
SLOW_PROFILE = _settings(100, 10)


@dataclass
class Copies:
    """Each example starts from a fresh copy of the module's built template."""

    pg_server: PgServer
    template: str
    name: str

    def start(self) -> psycopg.Connection:
        self.pg_server.clone_database(self.template, self.name)
        return psycopg.connect(
            **_params(self.pg_server.database_settings(self.name)), autocommit=True
        )


def _params(settings: dict[str, str]) -> dict[str, str]:
    return {
        "host": settings["PGHOST"],
        "port": settings["PGPORT"],
        "user": settings["PGUSER"],
        "dbname": settings["PGDATABASE"],
    }


def machine_for(copies: Copies) -> type[RuleBasedStateMachine]:
    class SourceChanges(RuleBasedStateMachine):
        c: ClassVar[Copies] = copies

        def __init__(self) -> None:
            super().__init__()
            self.conn = self.c.start()
            self.source = Source(self.conn, clock=BASE_TIME + timedelta(days=1))

        @rule(change=fingerprint_alphabet())
        def change(self, change: Change) -> None:
            before = {e: read_by(self.conn, e) for e in ENVIRONMENTS}
            printed = fingerprints(self.conn)
            note(f"  {change.apply(self.source)}")
            after = {e: read_by(self.conn, e) for e in ENVIRONMENTS}
            now = fingerprints(self.conn)
            for environment in ENVIRONMENTS:
                changed = after[environment] != before[environment]
                moved = now[environment] != printed[environment]
                assert moved == changed, (
                    f"{environment}: what its build reads "
                    f"{'changed' if changed else 'did not change'}, but its fingerprint "
                    f"{'changed' if moved else 'did not'}"
                )

        def teardown(self) -> None:
            self.conn.close()

    return SourceChanges


@pytest.fixture
def copies(pg_server: PgServer, module_template: str) -> Iterator[Copies]:
    name = f"t_fp_{uuid.uuid4().hex[:10]}"
    yield Copies(pg_server, module_template, name)
    pg_server.drop_database(name)


def test_fingerprint_changes_exactly_when_what_a_build_reads_changes(copies: Copies) -> None:
    run_state_machine_as_test(machine_for(copies), settings=DEFAULT_PROFILE)


@pytest.mark.slow
def test_fingerprint_property_wide(copies: Copies) -> None:
    run_state_machine_as_test(machine_for(copies), settings=SLOW_PROFILE)


# --- what no source change shows ----------------------------------------------------------------


def test_rollback_restore_and_dropped_tables_change_it(
    module_copy: psycopg.Connection, dbt_project: DbtProject, tmp_path: Path
) -> None:
    conn, settings = module_copy, dict(dbt_project.settings)
    built = fingerprint.compute(conn, inputs("DEFAULT")).digest
    assert fingerprint.compute(conn, inputs("DEFAULT")).digest == built, "not repeatable"
    made = operations.backup(settings, "DEFAULT", directory=tmp_path)
    assert fingerprint.compute(conn, inputs("DEFAULT")).digest == built, "a backup changed it"
    operations.rollback(settings, "DEFAULT", "public")
    rolled_back = fingerprint.compute(conn, inputs("DEFAULT")).digest
    assert rolled_back != built, "a rollback left the fingerprint as it was"
    operations.restore(settings, made.path, confirm=lambda _plan: None)
    restored = fingerprint.compute(conn, inputs("DEFAULT")).digest
    assert restored not in (built, rolled_back), "a restore left a fingerprint seen before"
    for table in (
        "public.symbol_memberships",  # an analyst table
        "public_intermediate_default.int_group_entries",  # a working table of the environment
        "public_staging_default.stg_legacy__cache_entries",  # a view
    ):
        before = fingerprint.compute(conn, inputs("DEFAULT")).digest
        kind = "view" if "staging" in table else "table"
        conn.execute(f"drop {kind} {table} cascade")
        assert fingerprint.compute(conn, inputs("DEFAULT")).digest != before, f"{table} dropped"


def test_code_options_and_variables_change_it(
    module_copy: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = module_copy
    plain = fingerprint.compute(conn, inputs("DEFAULT"))
    assert fingerprint.compute(conn, inputs("DEFAULT")) == plain
    with_vars = inputs("DEFAULT", args=("--vars", json.dumps({"reconcile_memberships": True})))
    assert fingerprint.compute(conn, with_vars).code != plain.code
    selected = inputs("DEFAULT", args=("-s", "definition_groups"))
    assert fingerprint.compute(conn, selected).code != plain.code
    monkeypatch.setenv("DBT_READER_ROLE", "someone_else")  # named by env_var() in the project
    assert fingerprint.compute(conn, inputs("DEFAULT")).code != plain.code
    monkeypatch.delenv("DBT_READER_ROLE")
    copy = copy_project(tmp_path / "project")
    (tmp_path / "project" / "profiles.yml").write_text(
        (PROJECT_ROOT / "profiles.example.yml").read_text()
    )
    monkeypatch.setenv("DBT_PROFILES_DIR", str(copy))
    copied = fingerprint.code_digest(inputs("DEFAULT"), copy)
    macro = copy / "macros" / "publishing" / "guard_mass_delete.sql"
    macro.write_text(macro.read_text() + "\n{# a comment is a change too #}\n")
    assert fingerprint.code_digest(inputs("DEFAULT"), copy) != copied
    seed = copy / "seeds" / "cache_type_mappings.csv"
    edited = fingerprint.code_digest(inputs("DEFAULT"), copy)
    seed.write_text(seed.read_text() + "\n")
    assert fingerprint.code_digest(inputs("DEFAULT"), copy) != edited


def test_options_it_cannot_read_build() -> None:
    assert fingerprint.inputs_for("default", ["--vars", "{unclosed"]) is None
    assert fingerprint.inputs_for("default", ["--vars", "[1, 2]"]) is None
    moved = fingerprint.inputs_for("default", ["--vars", "{environment: prod}"])
    assert moved is not None and moved.environment == "PROD"
    assert fingerprint.always_builds(["--full-refresh"])


# --- the harness, end to end --------------------------------------------------------------------

HARNESS_WITHOUT_DBT = (
    "import sys\n"
    "from validation.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "started = sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.'))\n"
    "print('dbt modules:', len(started))\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def harness_database(
    pg_server: PgServer, tmp_path: Path
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    name = f"t_fp_e2e_{uuid.uuid4().hex[:8]}"
    settings = pg_server.recreate_database(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBT_"))}
    env |= {**settings, "DO_NOT_TRACK": "1", "DBT_TARGET_PATH": str(tmp_path / "target")}
    env |= {"DBT_LOG_PATH": str(tmp_path / "logs")}
    with psycopg.connect(**_params(settings), autocommit=True) as conn:
        starting_cache(LegacyCache(conn).create())
    yield settings, env
    pg_server.drop_database(name)


def _build(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HARNESS_WITHOUT_DBT, "build",
         *([] if "--target" in extra else ["--target", "default"]),
         "--exclude", "resource_type:unit_test", *extra],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip


def _runs(settings: dict[str, str]) -> int:
    with psycopg.connect(**_params(settings)) as conn:
        row = conn.execute(
            "select count(*) from public.migration_run_log where environment = 'DEFAULT'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_nothing_changed_nothing_run(
    harness_database: tuple[dict[str, str], dict[str, str]],
) -> None:
    settings, env = harness_database
    first = _build(env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "the build changed the tables" in first.stdout
    second = _build(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "fingerprint recorded" in second.stdout
    assert _runs(settings) == 2
    third = _build(env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "nothing changed since run 2 of DEFAULT" in third.stdout, third.stdout
    assert "--force builds anyway" in third.stdout
    assert "dbt modules: 0" in third.stdout, "the skipped build imported dbt"
    assert "dbt build --target" not in third.stdout
    assert _runs(settings) == 2, "the skipped build logged a run"
    with psycopg.connect(**_params(settings), autocommit=True) as conn:
        conn.execute(  # one row, rewritten in place, no stamp bump
            "update public.cache_entries set value = jsonb_set(value, '{holdings}',"
            " value->'holdings' || '[\"AMD\"]') where key = 'SPY' and environment = 'DEFAULT'"
        )
    changed = _build(env)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "nothing changed" not in changed.stdout
    assert _runs(settings) == 3
    forced = _build(env, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "nothing changed" not in forced.stdout and _runs(settings) == 4
    assert "fingerprint recorded" in forced.stdout
    assert "nothing changed since run 4" in _build(env).stdout
    with psycopg.connect(**_params(settings), autocommit=True) as conn:
        conn.execute("drop table public.migration_build_fingerprints")
    rebuilt = _build(env)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "nothing changed" not in rebuilt.stdout and _runs(settings) == 5
    # several targets in one process: each is skipped or built (and recorded) on its own
    both = ("--target", "default,prod")
    first_prod = _build(env, *both)
    assert first_prod.returncode == 0, first_prod.stdout + first_prod.stderr
    assert "nothing changed since run 5 of DEFAULT" in first_prod.stdout, first_prod.stdout
    assert "dbt build --target prod" in first_prod.stdout
    assert "dbt build --target default " not in first_prod.stdout
    confirmed = _build(env, *both, "--force")  # both built, in this process, both recorded
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert confirmed.stdout.count("(in this process)") == 2, confirmed.stdout
    assert confirmed.stdout.count("fingerprint recorded") == 2, confirmed.stdout
    skipped = _build(env, *both)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "nothing changed since run 6 of DEFAULT" in skipped.stdout, skipped.stdout
    assert "nothing changed since run 2 of PROD" in skipped.stdout
    assert "dbt modules: 0" in skipped.stdout
