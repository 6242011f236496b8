"""A user's database is production: every command the README lists, pointed at a database that
holds somebody's real cache_entries (and a table of their own), leaves both exactly as they
were — same rows, same row versions.

The commands run as a user runs them (``python -m validation …`` and ``dbt …`` as child
processes, the PG* variables naming the user's database), once, in the README's order; each
test then checks one command's outcome and that the marker rows survived it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.databases import PROJECT_ROOT, PgServer, connect
from support.legacy_cache import LegacyCache, cache_fingerprint, small_cache

USERS_OWN_ROWS = "select md5(string_agg(t::text, '|' order by t.note)) from public.user_notes t"


@dataclass(frozen=True)
class Ran:
    """One command as the user ran it, and the user's data right after it."""

    command: tuple[str, ...]
    exit_code: int
    output: str
    cache_after: str
    own_rows_after: str
    marker_present: bool


@dataclass(frozen=True)
class Session:
    cache_before: str
    own_rows_before: str
    ran: Mapping[str, Ran]
    demo_database: str
    database: str
    env: Mapping[str, str]


def _fingerprints(settings: Mapping[str, str]) -> tuple[str, str, bool]:
    with connect(settings) as conn:
        own = conn.execute(USERS_OWN_ROWS).fetchone()
        marker = conn.execute(
            "select 1 from public.cache_entries where type = 'app_settings' and key = 'marker'"
        ).fetchone()
        return cache_fingerprint(conn), str(own[0] if own else None), marker is not None


@pytest.fixture(scope="module")
def readme_commands_on_a_users_database(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    """A user's database (their cache_entries with DEFAULT rows and a marker row, and a
    table of their own), and every README command run against it once, in order."""
    tag = uuid.uuid4().hex[:8]
    database, demo_database = f"t_users_{tag}", f"t_users_{tag}_demo"
    settings = pg_server.recreate_database(database)
    with pg_server.connect(database, autocommit=True) as conn:
        cache = small_cache(LegacyCache(conn).create())
        cache.add("app_settings", "marker", "Somebody's setting", {"keep": True})
        conn.execute("create table public.user_notes (note text primary key)")
        conn.execute("insert into public.user_notes values ('written by the user, not by us')")
    cache_before, own_before, _ = _fingerprints(settings)

    work = tmp_path_factory.mktemp("users_database")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        **settings,
        "DO_NOT_TRACK": "1",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
    }
    dbt = str(Path(sys.executable).parent / "dbt")
    harness = (sys.executable, "-m", "validation")
    commands: dict[str, tuple[str, ...]] = {
        "load-sample": (*harness, "load-sample"),
        "load-sample --replace without --yes": (*harness, "load-sample", "--replace"),
        "demo in the user's database": (*harness, "demo", "--database", database),
        "demo": (*harness, "demo", "--database", demo_database),
        "build": (*harness, "build", "--target", "default"),
        "validate": (*harness, "validate", "--target", "default", "--timings", "report"),
        "query": (*harness, "query", "etf", "XLE"),
        "backup": (*harness, "backup", "--target", "default", "--out", str(work / "backups")),
        "retirement": (*harness, "retirement", "--target", "default"),
        "dbt source freshness": (dbt, "source", "freshness", "--target", "default"),
        "dbt docs generate": (dbt, "docs", "generate", "--target", "default"),
        "rollback without --yes": (*harness, "rollback", "--target", "default"),
        "rollback --yes": (*harness, "rollback", "--target", "default", "--yes"),
    }
    ran: dict[str, Ran] = {}
    for label, command in commands.items():
        ran[label] = _run(command, env, settings)
        if label == "backup":
            dump = next(
                line.split(":", 1)[1].strip()
                for line in ran[label].output.splitlines()
                if line.startswith("backup:")
            )
            restore = (*harness, "restore", dump, "--yes")
            ran["restore --yes"] = _run(restore, env, settings)
    try:
        yield Session(cache_before, own_before, ran, demo_database, database, env)
    finally:
        pg_server.drop_database(demo_database)
        pg_server.drop_database(database)


def _run(command: tuple[str, ...], env: Mapping[str, str], settings: Mapping[str, str]) -> Ran:
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    cache_after, own_after, marker = _fingerprints(settings)
    return Ran(
        command, completed.returncode, completed.stdout + completed.stderr,
        cache_after, own_after, marker,
    )  # fmt: skip


COMMANDS = (
    "load-sample",
    "load-sample --replace without --yes",
    "demo in the user's database",
    "demo",
    "build",
    "validate",
    "query",
    "backup",
    "restore --yes",
    "retirement",
    "dbt source freshness",
    "dbt docs generate",
    "rollback without --yes",
    "rollback --yes",
)


@pytest.mark.parametrize("label", COMMANDS)
def test_the_users_rows_survive(readme_commands_on_a_users_database: Session, label: str) -> None:
    session = readme_commands_on_a_users_database
    ran = session.ran[label]
    assert ran.marker_present, f"{label} deleted the user's marker row:\n{ran.output}"
    assert ran.cache_after == session.cache_before, f"{label} changed cache_entries:\n{ran.output}"
    assert ran.own_rows_after == session.own_rows_before, f"{label} changed the user's table"
    assert "Traceback" not in ran.output, ran.output


def test_load_sample_refuses_and_names_the_count(
    readme_commands_on_a_users_database: Session,
) -> None:
    ran = readme_commands_on_a_users_database.ran["load-sample"]
    assert ran.exit_code == 2
    assert "already holds" in ran.output and "'DEFAULT' rows" in ran.output
    assert "--replace --yes" in ran.output
    refused = readme_commands_on_a_users_database.ran["load-sample --replace without --yes"]
    assert refused.exit_code == 2 and "rows would be deleted" in refused.output
    assert "--yes" in refused.output


def test_the_demo_works_in_a_database_of_its_own_and_says_so(
    readme_commands_on_a_users_database: Session, pg_server: PgServer
) -> None:
    session = readme_commands_on_a_users_database
    ran = session.ran["demo"]
    assert ran.exit_code == 0, ran.output
    assert f"created {session.demo_database}" in ran.output
    with pg_server.connect(session.demo_database) as conn:
        comment = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database"
            " where datname = current_database()"
        ).fetchone()
        groups = conn.execute("select count(*) from public.definition_groups").fetchone()
    assert comment is not None and "created by the sprint59 migration harness" in comment[0]
    assert groups is not None and groups[0] > 0
    # told to use the user's own database, it refuses to load over their rows
    refused = session.ran["demo in the user's database"]
    assert refused.exit_code == 2 and "was not created by the demo" in refused.output


def test_the_commands_that_change_the_projects_tables_ask_first(
    readme_commands_on_a_users_database: Session,
) -> None:
    ran = readme_commands_on_a_users_database.ran
    assert ran["build"].exit_code == 0, ran["build"].output
    assert ran["restore --yes"].exit_code == 0, ran["restore --yes"].output
    assert "delete" in ran["restore --yes"].output and "insert" in ran["restore --yes"].output
    unconfirmed = ran["rollback without --yes"]
    assert unconfirmed.exit_code == 2
    assert "Refusing to change the tables without confirmation" in unconfirmed.output
    assert ran["rollback --yes"].exit_code == 0, ran["rollback --yes"].output
    assert "cache_entries is not touched" in ran["rollback --yes"].output


def test_the_read_only_commands_run(readme_commands_on_a_users_database: Session) -> None:
    ran = readme_commands_on_a_users_database.ran
    for label in ("query", "backup", "dbt docs generate"):
        assert ran[label].exit_code == 0, f"{label}:\n{ran[label].output}"
    # the user's cache is not the sample, so default.yml's counts fail: a data failure, exit 1
    assert ran["validate"].exit_code in (0, 1) and "Result:" in ran["validate"].output
    assert ran["retirement"].exit_code in (0, 1), ran["retirement"].output
    assert ran["dbt source freshness"].exit_code in (0, 1), ran["dbt source freshness"].output


def test_the_demo_ends_with_a_rebalance_that_the_three_history_questions_answer(
    readme_commands_on_a_users_database: Session, pg_server: PgServer
) -> None:
    """make demo's scripted change: SPY rebalanced in the sample and rebuilt; `query changes`
    lists what left and what joined, and the as-of forms still see SPY before it."""
    session = readme_commands_on_a_users_database
    output = session.ran["demo"].output
    command = next(line for line in output.splitlines() if "query changes SPY --since" in line)
    since = command.rsplit(" ", 1)[1]
    summary = next(line for line in output.splitlines() if "SPY was rebalanced" in line)
    left = summary.split("out: ", 1)[1].split(";", 1)[0].split(", ")
    joined = summary.split("in: ", 1)[1].split(")", 1)[0].split(", ")
    assert len(left) == 3 and len(joined) == 3, summary

    env = {**session.env, "PGDATABASE": session.demo_database}
    harness = (sys.executable, "-m", "validation", "query")

    def ask(*question: str) -> list[dict[str, object]]:
        completed = subprocess.run(
            (*harness, *question, "--format", "json"), cwd=PROJECT_ROOT, env=dict(env),
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        return json.loads(completed.stdout)

    changes = ask("changes", "SPY", "--since", since)
    assert sorted((c["change"], c["symbol"]) for c in changes) == sorted(
        [("added", s) for s in joined] + [("removed", s) for s in left]
    )
    before = {m["symbol"] for m in ask("etf", "SPY", "--as-of", since)}
    assert set(left) <= before and not set(joined) & before
    assert "SPY" in {g["group_name"] for g in ask("symbol", left[0], "--as-of", since)}
    now = {m["symbol"] for m in ask("etf", "SPY")}
    assert set(joined) <= now and not set(left) & now
