"""Two builds at once against shared tables: both finish correctly or one waits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from conftest import PROJECT_ROOT, DbtProject
from legacy_cache import LegacyCache, small_cache


def _start(command: list[str], settings: dict[str, str], work: Path) -> subprocess.Popen[str]:
    work.mkdir(parents=True, exist_ok=True)
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
            _start([dbt, "build", "--target", target, *profiles], settings, tmp_path / target)
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
                [sys.executable, "-m", "validation", "build", "--target", target],
                settings,
                tmp_path / f"run{i}",
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


def _conninfo(settings: dict[str, str]) -> dict[str, str]:
    return {
        "host": settings["PGHOST"],
        "port": settings["PGPORT"],
        "user": settings["PGUSER"],
        "dbname": settings["PGDATABASE"],
    }
