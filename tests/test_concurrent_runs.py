"""Two builds at once against shared tables: both finish correctly, one waits, or the second
stops at once with a message (plain dbt, one environment: macros/run_claim/)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from support.databases import PROJECT_ROOT
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, published, small_cache

IN_PROGRESS = "Another run of environment DEFAULT is in progress"
CHANGED_WHILE_STARTING = "Another run of environment DEFAULT changed its relations"
# dbt's unit tests mock every input and touch no table (the session's sample build runs them):
# the builds here leave them out, as the in-process ones do (DbtProject.build).
NO_UNIT_TESTS = ("--exclude", "resource_type:unit_test")


def _start(
    command: list[str],
    settings: dict[str, str],
    work: Path,
    parsed_by: DbtProject | None = None,
    target: str = "default",
) -> subprocess.Popen[str]:
    """``command`` in a child process with its own target and log directories.  With
    ``parsed_by``, its partial-parse file for ``target`` goes where the child's dbt looks
    (DbtProject.seed_parsed_state): ``target/`` for a bare dbt, ``target/<target>/`` for the
    harness."""
    work.mkdir(parents=True, exist_ok=True)
    if parsed_by is not None:
        harness = "validation" in command
        parsed_by.seed_parsed_state(work / "target" / (target if harness else ""), target)
    env = {
        **os.environ,
        **settings,
        "DO_NOT_TRACK": "1",
        "DBT_SCHEMA": "public",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
    }
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def _published_counts(conn: psycopg.Connection) -> list[tuple[str, int, int, int]]:
    return conn.execute(
        "select g.environment, count(distinct g.id), count(m.id), count(distinct m.id)"
        " from definition_groups g left join group_memberships m on m.group_id = g.id"
        " group by g.environment order by 1"
    ).fetchall()


def test_bare_dbt_builds_of_two_environments_at_once_both_succeed(
    dbt_project: DbtProject, tmp_path: Path
):
    """Once the tables exist (a database's first build ran), environments may overlap."""
    settings = dict(dbt_project.settings)
    with psycopg.connect(**_conninfo(settings), autocommit=True) as conn:
        cache = LegacyCache(conn).create()
        small_cache(cache, "DEFAULT")
        small_cache(cache, "PROD")
        dbt_project.build("default")  # the first build of the database creates the tables
        dbt = str(Path(sys.executable).parent / "dbt")
        profiles = ["--profiles-dir", str(dbt_project.work_dir)]
        runs = [
            _start(
                [dbt, "build", "--target", target, *NO_UNIT_TESTS, *profiles],
                settings,
                tmp_path / target,
                dbt_project,
                target,
            )
            for target in ("default", "prod")
        ]
        for run in runs:
            _finish(run)

        counts = _published_counts(conn)
    # 12 groups per environment (5 ETF/theme, 2 sectors, 5 universes), ids never shared
    assert [(env, groups) for env, groups, _, _ in counts] == [("DEFAULT", 12), ("PROD", 12)]
    assert all(rows == distinct for _, _, rows, distinct in counts)


def test_harness_builds_at_once_take_turns_even_on_an_empty_database(
    dbt_project: DbtProject, tmp_path: Path
):
    settings = dict(dbt_project.settings)
    with psycopg.connect(**_conninfo(settings), autocommit=True) as conn:
        cache = LegacyCache(conn).create()
        small_cache(cache, "DEFAULT")
        small_cache(cache, "PROD")
        runs = [
            _start(
                [sys.executable, "-m", "validation", "build", "--target", target, *NO_UNIT_TESTS],
                settings,
                tmp_path / f"run{i}",
                dbt_project,
                target,
            )
            for i, target in enumerate(("default", "default", "prod"))
        ]
        outputs = [_finish(run) for run in runs]

        counts = _published_counts(conn)
    assert [(env, groups) for env, groups, _, _ in counts] == [("DEFAULT", 12), ("PROD", 12)]
    assert all(rows == distinct for _, _, rows, distinct in counts)
    assert sum("waiting for it" in output for output in outputs) >= 1
    # each run kept its artifacts where dbt's DBT_TARGET_PATH said, not in the project's target/
    assert (tmp_path / "run2" / "target" / "prod" / "manifest.json").exists()


def test_two_plain_builds_of_one_environment_at_once_never_collide(
    dbt_project: DbtProject, reference_project: DbtProject, tmp_path: Path
):
    """An overlapping schedule on a database's first build: two plain `dbt build --target
    default` at once.  Each ends well, or ends before changing anything with a message that
    another run of DEFAULT is in progress -- never `relation ... already exists`; the tables
    equal a single build's."""
    settings = dict(dbt_project.settings)
    with psycopg.connect(**_conninfo(settings), autocommit=True) as conn:
        cache = small_cache(LegacyCache(conn).create(), "DEFAULT")
        dbt = str(Path(sys.executable).parent / "dbt")
        profiles = ["--profiles-dir", str(dbt_project.work_dir)]
        runs = [
            _start(
                [dbt, "build", "--target", "default", *NO_UNIT_TESTS, *profiles],
                settings,
                tmp_path / f"r{i}",
                dbt_project,
            )
            for i in range(2)
        ]
        ended = sorted(_ends(runs))  # (when it ended, exit code, output), first ended first
        state = published(conn)
        with reference_project.connect() as reference:
            cache.copy_to(reference)
        reference_project.build("default")
        with reference_project.connect() as reference:
            single = published(reference)

    for _, code, output in ended:
        assert "already exists" not in output, output[-3000:]
        if code != 0:
            assert IN_PROGRESS in output or CHANGED_WHILE_STARTING in output, output[-3000:]
            assert "stopped before changing anything" in output
    codes = [code for _, code, _ in ended]
    assert 0 in codes, [output[-2000:] for *_, output in ended]
    # the run that stopped for a run in progress did so before that run ended
    stopped = [i for i, (_, code, output) in enumerate(ended) if IN_PROGRESS in output]
    assert all(ended[i][1] != 0 and codes[-1] == 0 and i == 0 for i in stopped), codes
    assert (state.groups, state.memberships) == (single.groups, single.memberships)
    assert len(state.groups) == 12
    # Why a claim and not a session lock taken in on-run-start: dbt closes the hooks'
    # connection before the first model runs, so such a lock would be gone by then.
    for i in range(2):
        log = (tmp_path / f"r{i}" / "logs" / "dbt.log").read_text()
        if "Began executing node model." in log:
            closed = log.index("On master: Close")
            assert closed < log.index("Began executing node model."), "dbt kept the connection"


def test_the_claim_of_a_killed_run_is_taken_over(dbt_project: DbtProject, tmp_path: Path):
    """A run killed after claiming its environment leaves the claim behind; the next run sees
    no statement of it on the server, takes the claim over (after run_claim_idle_seconds)
    and builds."""
    settings = dict(dbt_project.settings)
    dbt = str(Path(sys.executable).parent / "dbt")
    command = [dbt, "build", "--target", "default", *NO_UNIT_TESTS]
    command += ["--profiles-dir", str(dbt_project.work_dir)]
    claimed = (
        "select invocation_id from public.migration_run_claims"
        " where environment = 'DEFAULT' and finished_at is null"
    )
    with psycopg.connect(**_conninfo(settings), autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "DEFAULT")
        killed = _start(command, settings, tmp_path / "killed", dbt_project)
        deadline = time.monotonic() + 300
        holder = None
        while holder is None and time.monotonic() < deadline and killed.poll() is None:
            if conn.execute("select to_regclass('public.migration_run_claims')").fetchone()[0]:
                holder = conn.execute(claimed).fetchone()
            time.sleep(0.05)
        killed.kill()
        killed.communicate()
        assert holder is not None, "the first run never claimed DEFAULT"

        next_run = _start(command, settings, tmp_path / "next", dbt_project)
        ((_, code, output),) = _ends([next_run])

        assert code == 0, output[-3000:]
        assert f"The run holding DEFAULT (dbt invocation {holder[0]})" in output
        assert "taking over its claim" in output
        assert conn.execute(claimed).fetchone() is None  # the new run finished its claim
        assert _published_counts(conn)[0][:2] == ("DEFAULT", 12)


def _ends(runs: list[subprocess.Popen[str]]) -> list[tuple[float, int, str]]:
    """Wait for every run, each in its own thread (so each end is timed when it happens)."""

    def wait(run: subprocess.Popen[str]) -> tuple[float, int, str]:
        output, _ = run.communicate(timeout=600)
        return time.monotonic(), run.returncode, output

    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(wait, runs))


def _conninfo(settings: dict[str, str]) -> dict[str, str]:
    return {
        "host": settings["PGHOST"],
        "port": settings["PGPORT"],
        "user": settings["PGUSER"],
        "dbname": settings["PGDATABASE"],
    }
