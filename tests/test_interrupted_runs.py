"""Interrupted runs and concurrent readers, on the real-scale sample (DEFAULT, ~16k rows).

- A `dbt build` (the CLI, in a child process) is interrupted during an incremental run --
  SIGKILL of the process, or pg_terminate_backend of its server connections -- at random
  moments and at chosen points inside the marts' publishing transaction (the run is held
  there by a lock this test owns, then interrupted): the two tables are always exactly at
  the previous consistent state or at the new one, never in between, and the next run
  converges to what an uninterrupted run gives.
- Analysts reading in a loop (the spec's ETF-holdings query, in their own connection)
  during an incremental run see a changed ETF switch from its old member set to its new one
  at once (checked against the group row's content checksum in the same snapshot), a removed
  ETF lose its row and its members together, and a new ETF appear with all its members.
- On the very first build of the tables the memberships come in a second transaction (the
  groups' post-hook has no memberships table to publish into yet): what a reader sees in
  between is measured and reported, not failed. Measured: for a few tenths of a second the
  groups are visible while `group_memberships` does not exist yet, so the analyst query fails
  with "relation does not exist"; no read saw a group with an empty member list.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.databases import PROJECT_ROOT, PgServer, connect
from support.dbt_project import DbtProject
from support.legacy_cache import Published, published

ETF_HOLDINGS_SQL = (  # the spec's ETF-holdings query (validation/timings.py), verbatim
    "select gm.symbol from public.group_memberships gm join public.definition_groups dg"
    " on dg.id = gm.group_id where dg.name = %s and dg.type = 'ETF' and dg.environment = %s"
)
GROUP_ROW_SQL = (
    "select metadata -> 'source' ->> 'checksum' from public.definition_groups"
    " where name = %s and type = 'ETF' and environment = %s"
)
MARTS_LOCK_SQL = "select pg_advisory_lock(hashtext('sprint59_migration.marts'))"
CHANGED, REMOVED, ADDED, UNCHANGED = "SPY", "XLE", "NEWETF", "QQQ"
NEW_HOLDINGS = [f"NEW{i:03d}" for i in range(60)]
CHANGED_AT = "2025-12-06 10:00:00+00"  # fixed, so every run of the changes gives one result


def apply_changes(conn: psycopg.Connection) -> str:
    """The new source: SPY loses 20 holdings, gains 5 and is reordered; XLE goes; NEWETF
    comes; a theme changes. Returns the first removed SPY symbol (used to hold the run)."""
    holdings = conn.execute(
        "select value -> 'holdings' from cache_entries where type = 'etf_holdings'"
        " and key = %s and environment = 'DEFAULT'",
        (CHANGED,),
    ).fetchone()
    assert holdings is not None
    old = list(holdings[0])
    removed = old[100:120]
    new = [*reversed(old[:100]), *old[120:], "NEW001", "NEW002", "NEW003", "NEW004", "NEW005"]
    conn.execute(
        "update cache_entries set value = jsonb_set(value, '{holdings}', %s::jsonb),"
        " updated_at = %s where type = 'etf_holdings' and key = %s"
        " and environment = 'DEFAULT'",
        (psycopg.types.json.Jsonb(new), CHANGED_AT, CHANGED),
    )
    conn.execute(
        "delete from cache_entries where type = 'etf_holdings' and key = %s"
        " and environment = 'DEFAULT'",
        (REMOVED,),
    )
    conn.execute(
        "insert into cache_entries (type, name, key, value, environment, created_at, updated_at)"
        " values ('etf_holdings', 'A new fund', %s, %s, 'DEFAULT', %s, %s)",
        (ADDED, psycopg.types.json.Jsonb({"holdings": NEW_HOLDINGS}), CHANGED_AT, CHANGED_AT),
    )
    conn.execute(
        "update cache_entries set value = jsonb_set(value, '{symbols}',"
        " (value -> 'symbols') - 0 || '[\"NEW010\"]'::jsonb), updated_at = %s"
        " where type = 'theme_definition' and key = 'crypto_miners'"
        " and environment = 'DEFAULT'",
        (CHANGED_AT,),
    )
    return str(removed[0])


def content(state: Published) -> tuple[Any, Any]:
    return state.groups, state.memberships


@dataclass
class Scenario:
    """The sample built (template database `old_name`) and what the changed source gives."""

    pg_server: PgServer
    project: DbtProject
    old_name: str
    old: Published
    new: Published
    work_dir: Path

    @property
    def name(self) -> str:
        return self.project.settings["PGDATABASE"]

    def start(self) -> tuple[psycopg.Connection, str]:
        """The working database at the old state, with the new source; (conn, held symbol)."""
        self.pg_server.clone_database(self.old_name, self.name)
        conn = connect(self.project.settings)
        return conn, apply_changes(conn)

    def assert_converged(self, conn: psycopg.Connection) -> None:
        now = published(conn)
        assert content(now) == content(self.new), "the run did not converge to the new state"
        survivors = self.old.group_ids.keys() & now.group_ids.keys()
        assert {k: now.group_ids[k] for k in survivors} == {
            k: self.old.group_ids[k] for k in survivors
        }
        new_ids = {v for k, v in now.group_ids.items() if k not in self.old.group_ids}
        assert not new_ids & set(self.old.group_ids.values()), "an id was reused"
        leftovers = conn.execute(
            "select relname from pg_class where relname like '%%__dbt_tmp'"
            " or relname like '%%__dbt_backup'"
        ).fetchall()
        assert not leftovers, f"relations left behind: {leftovers}"


@pytest.fixture(scope="module")
def scenario(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    from validation import sample

    settings = pg_server.recreate_database(migration_database)
    project = DbtProject(settings, dbt_work_dir, _session_manifests)
    with connect(settings) as conn:
        sample.load_sample(conn, schema="public", environments=("DEFAULT",), as_of=sample.BASE_TIME)
    project.build("default")
    with connect(settings) as conn:
        old = published(conn)
    old_name = f"{migration_database}_old"
    pg_server.clone_database(migration_database, old_name)
    with connect(settings) as conn:
        apply_changes(conn)
        project.build("default")
        new = published(conn)
    yield Scenario(pg_server, project, old_name, old, new, tmp_path_factory.mktemp("cli"))
    pg_server.drop_database(old_name)
    pg_server.drop_database(migration_database)


# --- a dbt build in a child process ---------------------------------------------------------


# What the child builds leave out: dbt's unit tests (they mock every input; the session's
# sample build runs them), and the data tests that read the marts or what is built from them.
# Those run only after group_memberships -- the end of the publish -- is complete, so the run
# up to there is unchanged (the held points, the random ones measured here, the readers'
# windows); the states they would check are the ones these tests compare with the fixture's
# in-process builds, which ran every data test on them, as the converging build does.  About
# 7 s of every run that finishes.
CHILD_BUILD_EXCLUDES = ("resource_type:unit_test", "resource_type:test,group_memberships+")


class DbtBuild:
    """`dbt build --target default` (the CLI) against the scenario database, but for
    CHILD_BUILD_EXCLUDES."""

    def __init__(self, scenario: Scenario) -> None:
        work = scenario.work_dir
        dbt = str(Path(sys.executable).parent / "dbt")
        env = {
            **os.environ,
            **scenario.project.settings,
            "DO_NOT_TRACK": "1",
            "DBT_SCHEMA": "public",
        }
        scenario.project.seed_parsed_state(work / "target")  # no full parse in the child
        self.log = (work / "dbt-output.txt").open("w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                dbt, "build", "--target", "default", "--exclude", *CHILD_BUILD_EXCLUDES,
                "--project-dir", str(PROJECT_ROOT),
                "--profiles-dir", str(scenario.project.work_dir),
                "--target-path", str(work / "target"),  # shared: partial parsing
                "--log-path", str(work / "logs"),
            ],
            cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.output_path = work / "dbt-output.txt"

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout)
        self.log.close()
        return code

    def output(self) -> str:
        return self.output_path.read_text()[-4000:]


class Monitor:
    """What the run's server connections are doing (every backend of the database but ours)."""

    def __init__(self, conn: psycopg.Connection, dbname: str) -> None:
        self.conn, self.dbname = conn, dbname
        self.ours: set[int] = set()

    def backends(self) -> list[tuple[int, str, str, str]]:
        return self.conn.execute(
            "select pid, coalesce(wait_event_type, ''), coalesce(wait_event, ''), query"
            " from pg_stat_activity where datname = %s and pid <> all(%s)"
            " and backend_type = 'client backend'",
            (self.dbname, [*self.ours, self.conn.info.backend_pid]),
        ).fetchall()

    def wait_for(
        self, condition: Callable[[list[Any]], bool], timeout: float = 120, every: float = 0.005
    ) -> list[Any]:
        """Polls every 5 ms by default: a run's timed interruptions start from the moment its
        statement is first seen.  Waits that time nothing poll less often: each poll is a
        query, and the run being watched shares the machine's cores with it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.backends()
            if condition(found):
                return found
            time.sleep(every)
        raise AssertionError(f"timed out waiting for the run; backends: {self.backends()}")

    def blocked_by(self, blocker: psycopg.Connection) -> bool:
        """Whether one of the run's connections waits for a lock `blocker` holds.  Any lock
        wait is not enough: the run's threads wait briefly on each other (two staging views
        dropped at once wait on a catalog object lock) long before the hold."""
        row = self.conn.execute(
            "select exists (select from pg_stat_activity where datname = %s and pid <> all(%s)"
            " and %s = any(pg_blocking_pids(pid)))",
            (self.dbname, [*self.ours, self.conn.info.backend_pid], blocker.info.backend_pid),
        ).fetchone()
        return bool(row and row[0])

    def wait_until_held(self, blocker: psycopg.Connection) -> list[Any]:
        # the run stays blocked until released: no hurry
        return self.wait_for(lambda found: bool(found) and self.blocked_by(blocker), every=0.025)

    def wait_until_gone(self, timeout: float = 120) -> None:
        self.wait_for(lambda found: not found, timeout, every=0.05)


# --- holding a run at a chosen point --------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """How and where to interrupt: after a random delay, or while held at a lock we own."""

    label: str
    how: str  # "sigkill" (the dbt process) or "terminate" (its server connections)
    hold: str | None = None  # "marts_lock", "groups_write", "membership_publish"
    delay: float | None = None  # seconds after the run's first server connection, or after
    after: str | None = None  # ... the first statement that mentions this


def _hold(conn: psycopg.Connection, hold: str, held_symbol: str) -> None:
    """Take the lock the run will wait for at `hold` (released by conn.rollback())."""
    if hold == "marts_lock":  # the transaction advisory lock the marts take first
        conn.execute(MARTS_LOCK_SQL)
    elif hold == "groups_write":  # the pre-hook's delete of removed groups
        conn.execute("lock table public.definition_groups in share mode")
    elif hold == "membership_publish":  # the post-hook's membership diff, after the merge
        conn.execute(
            "select m.id from public.group_memberships m join public.definition_groups g"
            " on g.id = m.group_id where g.name = %s and g.type = 'ETF' and m.symbol = %s"
            " for update of m",
            (CHANGED, held_symbol),
        )
    else:
        raise ValueError(hold)


def _release(conn: psycopg.Connection, hold: str | None) -> None:
    if hold == "marts_lock":
        conn.execute("select pg_advisory_unlock_all()")
    conn.rollback()


def _statement(query: str) -> str:
    return " ".join(re.sub(r"^/\*.*?\*/", "", query, flags=re.DOTALL).split())[:70]


def interrupt(scenario: Scenario, conn: psycopg.Connection, point: Point, held: str) -> str:
    """Run dbt build and interrupt it at `point`; returns what its connections were doing."""
    blocker = psycopg.connect(conn.info.dsn)
    monitor = Monitor(conn, scenario.name)
    monitor.ours.add(blocker.info.backend_pid)
    try:
        if point.hold:
            _hold(blocker, point.hold, held)
        run = DbtBuild(scenario)
        if point.hold:
            found = monitor.wait_until_held(blocker)
        else:
            monitor.wait_for(
                lambda found: any(point.after in q for *_, q in found) if point.after else found
            )
            time.sleep(point.delay or 0)
            found = monitor.wait_for(lambda f: bool(f) or run.process.poll() is not None)
        doing = "; ".join(f"{w or 'running'}: {_statement(q)}" for _, _, w, q in found)
        if point.how == "sigkill":
            run.process.send_signal(signal.SIGKILL)
        else:
            for pid, *_ in found:
                conn.execute("select pg_terminate_backend(%s)", (pid,))
        _release(blocker, point.hold)
        if run.finish() == 0:
            doing += " (the run had finished)"
    finally:
        blocker.close()
    monitor.wait_until_gone()
    return doing


RANDOM = random.Random(20251205)
POINTS = [
    Point("SIGKILL, held at the marts' advisory lock", "sigkill", hold="marts_lock"),
    Point("terminated, held at the delete of removed groups", "terminate", hold="groups_write"),
    Point("SIGKILL, held at the membership diff (groups merged)", "sigkill",
          hold="membership_publish"),
    Point("terminated, held at the membership diff (groups merged)", "terminate",
          hold="membership_publish"),
    Point(f"SIGKILL {(d := RANDOM.uniform(0, 1.5)):.2f} s into the run", "sigkill", delay=d),
    Point(f"terminated {(d := RANDOM.uniform(0, 0.25)):.2f} s into the marts", "terminate",
          delay=d, after="pg_advisory_xact_lock"),
    Point(f"SIGKILL {(d := RANDOM.uniform(0, 0.25)):.2f} s into the marts", "sigkill",
          delay=d, after="pg_advisory_xact_lock"),
]  # fmt: skip


def test_interrupted_runs_leave_a_consistent_state_and_the_next_run_converges(
    scenario: Scenario,
) -> None:
    conn, held = scenario.start()
    with conn:
        previous = published(conn)
        assert content(previous) == content(scenario.old)
        outcomes = []
        for point in POINTS:
            doing = interrupt(scenario, conn, point, held)
            now = published(conn)
            if now == previous:
                outcome = "unchanged"
            else:
                # the run committed its marts before the interruption: the new state, whole
                assert content(now) == content(scenario.new), (
                    f"{point.label} ({doing}) left the tables between the old and the new state"
                )
                outcome = "published"
            if point.hold:
                assert outcome == "unchanged", (
                    f"{point.label}: interrupted inside the marts [{doing}]\n"
                    + (scenario.work_dir / "dbt-output.txt").read_text()[-6000:]
                )
            outcomes.append(f"{point.label}: {outcome} [{doing}]")
            previous = now
        print("\n".join(outcomes))

        scenario.project.build("default")
        scenario.assert_converged(conn)


# --- readers --------------------------------------------------------------------------------


@dataclass
class Reader:
    """A thread reading ETFs in its own connection, one consistent snapshot per round."""

    settings: dict[str, str]
    etfs: tuple[str, ...]
    seen: list[tuple[float, str, str | None, frozenset[str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)
    pid: int = 0
    missing_tables: int = 0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            conn = connect(self.settings)
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.pid = conn.info.backend_pid
            self.connected.set()
            with conn:
                while not self.stop.is_set():
                    try:
                        self._round(conn)
                    except psycopg.errors.UndefinedTable:  # before the first build made them
                        self.missing_tables += 1
                        time.sleep(0.005)
                    conn.rollback()
        except BaseException as exc:
            self.error = exc
            self.connected.set()

    def _round(self, conn: psycopg.Connection) -> None:
        for etf in self.etfs:
            symbols = conn.execute(ETF_HOLDINGS_SQL, (etf, "DEFAULT")).fetchall()
            row = conn.execute(GROUP_ROW_SQL, (etf, "DEFAULT")).fetchone()
            checksum = row[0] if row else None
            self.seen.append((time.monotonic(), etf, checksum, frozenset(s for (s,) in symbols)))

    def __enter__(self) -> Reader:
        self.thread.start()
        self.connected.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def _etf_state(state: Published, etf: str) -> tuple[str | None, frozenset[str]]:
    keys = [k for k in state.groups if k[1] == "ETF" and k[3] == etf and k[0] == "DEFAULT"]
    if not keys:
        return None, frozenset()
    (key,) = keys
    checksum = state.groups[key][2]["source"]["checksum"]
    members = frozenset(m[4] for m in state.memberships if m[:4] == key)
    return checksum, members


def test_readers_see_a_changed_etf_switch_at_once(scenario: Scenario) -> None:
    conn, held_symbol = scenario.start()
    etfs = (CHANGED, REMOVED, ADDED, UNCHANGED)
    allowed = {etf: {_etf_state(scenario.old, etf), _etf_state(scenario.new, etf)} for etf in etfs}
    assert len(allowed[CHANGED]) == 2 and (None, frozenset()) in allowed[REMOVED]
    blocker = psycopg.connect(conn.info.dsn)
    monitor = Monitor(conn, scenario.name)
    monitor.ours.add(blocker.info.backend_pid)
    with conn, Reader(dict(scenario.project.settings), etfs) as reader:
        monitor.ours.add(reader.pid)
        _hold(blocker, "membership_publish", held_symbol)
        run = DbtBuild(scenario)
        monitor.wait_until_held(blocker)
        held_at = time.monotonic()
        time.sleep(1.0)  # the groups are merged, their memberships not yet: readers read
        released_at = time.monotonic()
        _release(blocker, "membership_publish")
        blocker.close()
        assert run.finish() == 0, run.output()
        finished_at = time.monotonic()
        time.sleep(0.3)
    assert reader.error is None, reader.error
    bad = [(etf, ck, sorted(m)[:5], len(m)) for _, etf, ck, m in reader.seen
           if (ck, m) not in allowed[etf]]  # fmt: skip
    assert not bad, f"readers saw ETFs half-way: {bad[:5]}"
    while_held = [s for s in reader.seen if held_at <= s[0] <= released_at]
    assert len(while_held) > 20, "the reader barely read while the run was held"
    assert all((ck, m) == _etf_state(scenario.old, etf) for _, etf, ck, m in while_held)
    after = [s for s in reader.seen if s[0] > finished_at]
    assert after and all((ck, m) == _etf_state(scenario.new, etf) for _, etf, ck, m in after)
    print(f"{len(reader.seen)} reads, {len(while_held)} while the run was held mid-publish")


GROUP_AND_MEMBERS_SQL = (  # one statement, one snapshot: the group row and its member count
    "select dg.metadata -> 'source' ->> 'checksum', (select count(*) from"
    " public.group_memberships gm where gm.group_id = dg.id) from public.definition_groups dg"
    " where dg.name = %s and dg.type = 'ETF' and dg.environment = %s"
)


def _first_build_phase(conn: psycopg.Connection) -> str:
    """What a (read committed, autocommit) reader sees of SPY at one moment."""
    try:
        row = conn.execute(GROUP_AND_MEMBERS_SQL, ("SPY", "DEFAULT")).fetchone()
    except psycopg.errors.UndefinedTable:
        try:
            group = conn.execute(GROUP_ROW_SQL, ("SPY", "DEFAULT")).fetchone()
        except psycopg.errors.UndefinedTable:
            return "no tables"
        return "group, but no group_memberships table" if group else "no group"
    if row is None:
        return "no group"
    return "group with its members" if row[1] else "group without members"


def test_first_build_window_for_new_groups_is_measured(
    scenario: Scenario, record_property: Callable[[str, Any], None]
) -> None:
    """The very first build: the groups commit before the memberships table exists."""
    from validation import sample

    scenario.pg_server.recreate_database(scenario.name)
    seen: list[tuple[float, str]] = []
    stop = threading.Event()

    def read() -> None:
        with connect(scenario.project.settings) as reader:
            while not stop.is_set():
                seen.append((time.monotonic(), _first_build_phase(reader)))

    with connect(scenario.project.settings) as conn:
        sample.load_sample(conn, schema="public", environments=("DEFAULT",), as_of=sample.BASE_TIME)
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        run = DbtBuild(scenario)
        assert run.finish() == 0, run.output()
        time.sleep(0.2)
        stop.set()
        thread.join(30)
        assert content(published(conn)) == content(scenario.old)
    windows = {}
    for phase in ("group, but no group_memberships table", "group without members"):
        moments = [t for t, p in seen if p == phase]
        windows[phase] = (len(moments), max(moments) - min(moments) if moments else 0.0)
        record_property(f"first_build: {phase}", f"{len(moments)} reads, {windows[phase][1]:.3f} s")
    print(f"first build, {len(seen)} reads of SPY: {windows}")
    assert seen[-1][1] == "group with its members"
