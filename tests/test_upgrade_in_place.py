"""Users keep their databases across releases: a database built by an earlier main upgrades
in place to this one — every group and membership keeps its id, the content equals what this
release builds from scratch, and another writer's rows stay theirs — with at most the one-off
step the README states.

The earlier mains are taken from this repository's own history (``git archive``), so the
test needs the clone's history (CI clones it whole).  Add a main to PREVIOUS_MAINS when a
release lands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import psycopg
import pytest
from support.analyst_tables import group_holdings_differences
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, published, small_cache

# Releases whose databases must upgrade in place, each with the one-off step the README
# states for it: b85d73f predates the hostile-input rules, so one run with
# reconcile_memberships (membership metadata of elements that carried their own `position`
# changes without its group); b566884 predates the ledger, which the first build takes over
# from the rows it wrote with no step of the operator's; 1d7b528 (packed holdings, the
# build fingerprint) predates the compatibility relation and the membership diff as a model,
# which its next build adds with no step.
PREVIOUS_MAINS = {
    "b85d73fa29f51c8f751efc85fec9a396ffc9a083": {"reconcile_memberships": True},
    "b566884f8f955391463547f45f82bfff00376280": None,
    "1d7b5283b5e9525461d06593087c0ebba50374b3": None,
}


@pytest.fixture(scope="module", params=sorted(PREVIOUS_MAINS), ids=lambda commit: commit[:7])
def previous_main(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dbt project as a previous main had it, unpacked from git."""
    commit = request.param
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=PROJECT_ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if archive.returncode != 0:
        pytest.fail(
            f"git archive {commit[:7]} failed ({archive.stderr.decode().strip()}); the "
            "upgrade test needs the repository's history (a full clone)."
        )
    root = tmp_path_factory.mktemp(f"previous_main_{commit[:7]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    shutil.copyfile(root / "profiles.example.yml", root / "profiles.yml")
    (root / "COMMIT").write_text(commit)
    return root


def _build_with(project_dir: Path, settings: dict[str, str], work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBT_"))}
    env |= {**settings, "DO_NOT_TRACK": "1", "DBT_SCHEMA": "public"}
    built = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--target", "default",
         "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
         "--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        cwd=project_dir, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]


@pytest.fixture
def built_by_the_previous_main(
    pg_server: PgServer, dbt_project: DbtProject, previous_main: Path, tmp_path: Path
) -> Iterator[psycopg.Connection]:
    """The compact cache (every legacy shape), built by a previous main's project."""
    with dbt_project.connect() as conn:
        small_cache(LegacyCache(conn).create())
        _build_with(previous_main, dict(dbt_project.settings), tmp_path)
        yield conn


def _other_writers_rows(conn: psycopg.Connection) -> list[tuple[str, ...]]:
    """Another writer's group and a member it added by hand to a migrated group."""
    conn.execute(
        "insert into definition_groups (name, type, environment, metadata)"
        " values ('HANDMADE', 'ETF', 'DEFAULT', '{\"source\": \"a script\"}')"
    )
    conn.execute(
        "insert into group_memberships (group_id, symbol) select id, 'LEGX'"
        " from definition_groups where name in ('HANDMADE', 'SPY') and environment = 'DEFAULT'"
    )
    return _foreign_rows(conn)


def _foreign_rows(conn: psycopg.Connection) -> list[tuple[str, ...]]:
    return conn.execute(
        "select 'group', g::text, g.xmin::text from definition_groups g where name = 'HANDMADE'"
        " union all select 'membership', m::text, m.xmin::text from group_memberships m"
        " where symbol = 'LEGX' order by 1, 2"
    ).fetchall()


def test_a_database_built_by_a_previous_main_upgrades_in_place(
    built_by_the_previous_main: psycopg.Connection,
    previous_main: Path,
    dbt_project: DbtProject,
    reference_project: DbtProject,
) -> None:
    conn = built_by_the_previous_main
    before = published(conn)
    assert before.group_ids, "the previous main published nothing"
    theirs = _other_writers_rows(conn)

    # the README's one-off step, if any, and an ordinary run after it: every data test passes
    upgrade_vars = PREVIOUS_MAINS[(previous_main / "COMMIT").read_text()]
    dbt_project.build(variables=upgrade_vars, generic_tests=True)
    # group_holdings, which no earlier main had, is filled from the tables' rows as they are
    # (the migration's: the hand-added LEGX stays out of SPY's packed row)
    assert group_holdings_differences(conn, "DEFAULT") == []
    spy = conn.execute(
        "select symbols from group_holdings where environment = 'DEFAULT' and name = 'SPY'"
    ).fetchone()
    assert spy is not None and spy[0] and "LEGX" not in spy[0]
    dbt_project.build(generic_tests=True)

    # the other writer's rows are theirs, untouched; every row the release wrote is in the
    # ledger, and only those
    assert _foreign_rows(conn) == theirs
    unowned = conn.execute(
        "select (select count(*) from definition_groups g where not exists"
        "  (select from migration_ledger_groups l where l.group_id = g.id)),"
        " (select count(*) from group_memberships m where not exists"
        "  (select from migration_ledger_memberships l where l.membership_id = m.id))"
    ).fetchone()
    assert unowned == (1, 2)
    # their writer takes them back out: what is left is the release's rows
    conn.execute("delete from group_memberships where symbol = 'LEGX'")
    conn.execute("delete from definition_groups where name = 'HANDMADE'")
    after = published(conn)

    # every group and membership keeps its id
    assert after.group_ids == before.group_ids
    assert after.membership_ids == before.membership_ids
    # and the content this release builds from scratch
    with reference_project.connect() as reference:
        LegacyCache(conn).copy_to(reference)
        reference_project.build()
        fresh = published(reference)
    assert after.groups == fresh.groups
    assert after.memberships == fresh.memberships
