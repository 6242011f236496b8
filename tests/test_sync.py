"""``sprint59 sync``, the warm runner (validation/sync.py, docs/operations.md): a change
committed to cache_entries reaches group_memberships while it runs; it survives a lost
connection and a server restart; SIGTERM stops it after the run in progress, exit 0; and
it shares the environment with a plain ``dbt build`` through the run claim.

Each test starts sync as an operator would (a child process, ``--interval 1``) against a
database of its own and reads its one line per pass.  Nothing here is timed: every wait
has a generous timeout and asserts only what happened.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.sync_process import PASS_LINE, SyncProcess, start_sync

from validation import server

OPERATIONS_DOC = PROJECT_ROOT / "docs" / "operations.md"
IN_PROGRESS = "Another run of environment DEFAULT is in progress"
SETTLED = re.compile(r"DEFAULT nothing changed since run \d+$")
MARTS_LOCK_SQL = "select pg_advisory_lock(hashtext('sprint59_migration.marts'))"
HOLDER_SQL = """
select invocation_id from public.migration_run_claims
where environment = 'DEFAULT' and finished_at is null
"""
SPY = {"holdings": ["AAPL", "MSFT", "NVDA", "XOM", "AMD"], "total_holdings": 5,
       "last_updated": "2025-12-06T10:00:00"}  # fmt: skip


@dataclass
class Watched:
    """A small DEFAULT cache, the sync watching it, and a connection of the test's own."""

    sync: SyncProcess
    conn: psycopg.Connection
    cache: LegacyCache
    project: DbtProject
    blocker: psycopg.Connection | None = None  # holds the marts' advisory lock

    def release(self) -> None:
        if self.blocker is not None:
            self.blocker.close()  # ends its session, which releases the lock
            self.blocker = None

    def reconnect(self) -> None:
        self.conn = self.project.connect()
        self.cache.conn = self.conn


def _seeded_work(project: DbtProject, work: Path) -> Path:
    """The sync's dbt finds this database's parsed state where it looks (target/default/):
    it skips the full parse, as in tests/test_concurrent_runs.py."""
    project.seed_parsed_state(work / "target" / "default")
    return work


def _membership_of(conn: psycopg.Connection, symbol: str) -> bool:
    if conn.execute("select to_regclass('public.group_memberships')").fetchone()[0] is None:
        return False
    row = conn.execute(
        "select count(*) from public.group_memberships m"
        " join public.definition_groups g on g.id = m.group_id"
        " where g.environment = 'DEFAULT' and g.name = 'SPY' and m.symbol = %s",
        (symbol,),
    ).fetchone()
    return bool(row and row[0])


def _claim_holder(conn: psycopg.Connection) -> str | None:
    if conn.execute("select to_regclass('public.migration_run_claims')").fetchone()[0] is None:
        return None
    row = conn.execute(HOLDER_SQL).fetchone()
    return row[0] if row else None


def _runs(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select count(*) from public.migration_run_log where environment = 'DEFAULT'"
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def cache_being_synced(dbt_project: DbtProject, tmp_path: Path) -> Iterator[Watched]:
    """sync running over a small DEFAULT cache that it has built and found settled (its
    second run recorded the fingerprint, the pass after it saw nothing changed)."""
    conn = dbt_project.connect()
    cache = small_cache(LegacyCache(conn).create(), "DEFAULT")
    sync = start_sync(dbt_project.settings, _seeded_work(dbt_project, tmp_path))
    try:
        sync.wait_for_line(SETTLED)
        yield Watched(sync, conn, cache, dbt_project)
    finally:
        sync.kill()
        conn.close()


@pytest.fixture
def sync_held_in_its_first_run(dbt_project: DbtProject, tmp_path: Path) -> Iterator[Watched]:
    """sync started on a cache never built, its first run holding the claim of DEFAULT and
    held at the marts' advisory lock, which the test took first (as
    tests/test_interrupted_runs.py does): the run is surely in progress until
    ``Watched.release()``."""
    conn = dbt_project.connect()
    cache = small_cache(LegacyCache(conn).create(), "DEFAULT")
    blocker = dbt_project.connect()
    blocker.execute(MARTS_LOCK_SQL)
    sync = start_sync(dbt_project.settings, _seeded_work(dbt_project, tmp_path))
    watched = Watched(sync, conn, cache, dbt_project, blocker)
    try:
        sync.wait_until(lambda: _claim_holder(conn), "sync's first run claiming DEFAULT")
        sync.wait_until(lambda: _waiting_for_the_marts(conn), "sync's run at the marts' lock")
        yield watched
    finally:
        watched.release()
        sync.kill()
        conn.close()


def _waiting_for_the_marts(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        " and database = (select oid from pg_database where datname = current_database())"
    ).fetchone()
    return bool(row and row[0])


def test_a_committed_change_appears_in_group_memberships_while_sync_runs(
    cache_being_synced: Watched,
) -> None:
    watched = cache_being_synced
    assert not _membership_of(watched.conn, "AMD")
    settled_at = len(watched.sync.lines)

    watched.cache.update("etf_holdings", "SPY", SPY)  # committed: autocommit

    watched.sync.wait_until(lambda: _membership_of(watched.conn, "AMD"), "AMD in SPY")
    watched.sync.wait_for_line(SETTLED, after=settled_at)
    assert watched.sync.stop(signal.SIGTERM) == 0, watched.sync.output
    passes = watched.sync.pass_lines()
    assert passes, watched.sync.output
    # every line of a pass says when, which environment and what happened
    after_change = [line for line in watched.sync.lines[settled_at:] if PASS_LINE.match(line)]
    assert any(" DEFAULT built run " in line for line in after_change), watched.sync.output
    assert "stopped on SIGTERM" in watched.sync.lines[-1], watched.sync.output
    assert "Traceback" not in watched.sync.output


def test_a_server_restart_mid_watch_is_survived(
    cache_being_synced: Watched, pg_server: PgServer
) -> None:
    """The embedded PostgreSQL 18 is stopped and started again (validation.server) while
    sync watches.  The PostgreSQL 15 service is the machine's and cannot be restarted by a
    test: there every backend of the database (sync's included) is ended with
    pg_terminate_backend, which is the same failure from the client's side -- the server
    closed the connection -- without the server going away."""
    watched = cache_being_synced
    before = len(watched.sync.lines)
    if pg_server.kind == "embedded":
        from conftest import TEST_PGDATA

        assert server.stop(TEST_PGDATA)
        try:
            watched.sync.wait_for_line("failed: ", after=before)
        finally:
            server.start(TEST_PGDATA, database="postgres")
    else:
        pg_server.terminate_connections(watched.project.settings["PGDATABASE"])
        watched.sync.wait_for_line("failed: lost the connection", after=before)
    watched.reconnect()

    watched.cache.update("etf_holdings", "SPY", SPY)

    watched.sync.wait_until(lambda: _membership_of(watched.conn, "AMD"), "AMD in SPY")
    assert watched.sync.stop(signal.SIGTERM) == 0, watched.sync.output
    failures = [line for line in watched.sync.lines[before:] if " failed: " in line]
    assert failures and all("retrying in 1 s" in line for line in failures), failures
    assert "Traceback" not in watched.sync.output, watched.sync.output


def test_sigterm_during_a_run_stops_sync_after_that_run(
    sync_held_in_its_first_run: Watched,
) -> None:
    watched = sync_held_in_its_first_run
    holder = _claim_holder(watched.conn)

    watched.sync.process.send_signal(signal.SIGTERM)
    watched.release()  # the run goes on, and ends
    code = watched.sync.wait()

    assert code == 0, watched.sync.output
    passes = watched.sync.pass_lines()
    # the run in progress finished (its one line), and no pass came after it
    assert len(passes) == 1 and " DEFAULT built run 1 in " in passes[0], watched.sync.output
    assert "stopped on SIGTERM" in watched.sync.lines[-1]
    assert _claim_holder(watched.conn) is None, f"the claim of {holder} was left held"
    assert _runs(watched.conn) == 1
    assert _membership_of(watched.conn, "NVDA")  # the run published


def test_a_plain_dbt_build_beside_a_sync_run_stops_before_changing_anything(
    sync_held_in_its_first_run: Watched, tmp_path: Path
) -> None:
    """The run claim (macros/run_claim/): a plain ``dbt build`` of the environment that
    starts while sync's run holds it does not run over it; it stops at once, changing
    nothing, and gets its turn when run again after sync's run."""
    watched = sync_held_in_its_first_run
    dbt = str(Path(sys.executable).parent / "dbt")
    command = [dbt, "build", "--target", "default", "--exclude", "resource_type:unit_test"]
    command += ["--profiles-dir", str(watched.project.work_dir)]
    env = {**os.environ, **watched.project.settings, "DO_NOT_TRACK": "1", "DBT_SCHEMA": "public"}
    env |= {"DBT_TARGET_PATH": str(tmp_path / "plain"), "DBT_LOG_PATH": str(tmp_path / "plain")}
    watched.project.seed_parsed_state(tmp_path / "plain")  # no full parse: it starts sooner

    def plain_build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, check=False, timeout=600,
        )  # fmt: skip

    beside = plain_build()

    assert beside.returncode != 0, beside.stdout[-3000:]
    assert IN_PROGRESS in beside.stdout and "stopped before changing anything" in beside.stdout
    watched.release()
    watched.sync.wait_for_line(SETTLED)
    assert watched.sync.stop(signal.SIGTERM) == 0, watched.sync.output
    built = [line for line in watched.sync.pass_lines() if " built run " in line]
    assert _runs(watched.conn) == len(built), "the plain build beside sync logged a run"

    again = plain_build()
    assert again.returncode == 0, again.stdout[-3000:]
    assert _runs(watched.conn) == len(built) + 1


def _documented_trigger(schema: str) -> str:
    """The opt-in trigger of docs/operations.md, as a DBA copies it, for ``schema``."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- sync-notify-trigger -->\s*```sql\n(.*?)```", text, re.DOTALL)
    assert found, "docs/operations.md has no <!-- sync-notify-trigger --> block"
    return found[1].replace("legacy.", f"{schema}.")


def test_with_the_documented_trigger_a_notify_wakes_sync_before_its_interval(
    dbt_project: DbtProject, tmp_path: Path
) -> None:
    """``--listen``: the DBA's opt-in trigger (never installed by the project) sends a NOTIFY
    on every committed change to cache_entries; sync, polling only once an hour here, wakes
    at once and builds.  (Its first run changes the tables; the confirming run and the
    change's run are both woken by the change.)"""
    with dbt_project.connect() as conn:
        cache = small_cache(LegacyCache(conn).create(), "DEFAULT")
        conn.execute(_documented_trigger("public"))
        work = _seeded_work(dbt_project, tmp_path)
        sync = start_sync(
            dbt_project.settings, work, "--interval", "3600", "--listen", "sprint59_cache_entries"
        )
        try:
            sync.wait_for_line(" DEFAULT built run 1 in ")
            assert "woken at once by NOTIFY on channel sprint59_cache_entries" in sync.lines[0]

            cache.update("etf_holdings", "SPY", SPY)

            sync.wait_until(lambda: _membership_of(conn, "AMD"), "AMD in SPY")
            assert sync.stop(signal.SIGTERM) == 0, sync.output
        finally:
            sync.kill()
    assert "Traceback" not in sync.output


def test_sync_refuses_full_refresh_in_one_sentence_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--full-refresh would rebuild on every pass: refused, saying what to run instead."""
    from validation.cli import main

    assert main(["sync", "--target", "default", "--full-refresh"]) == 2
    error = capsys.readouterr().err
    assert "sprint59 build --full-refresh' once, then start sync without it" in error
    assert "Traceback" not in error
