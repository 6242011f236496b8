"""Users keep their databases across releases: a database built by the previous main upgrades
in place to this one — every group and membership keeps its id, and the content equals what
this release builds from scratch — with at most the one-off step the README states.

The previous main is taken from this repository's own history (``git archive``), so the test
needs the clone's history (CI clones it whole).  Bump PREVIOUS_MAIN when a release lands."""

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
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, published, small_cache

PREVIOUS_MAIN = "b85d73fa29f51c8f751efc85fec9a396ffc9a083"
# The one-off step the README states for a database built before the hostile-input rules:
# one run with reconcile_memberships (membership metadata of elements that carried their own
# `position` changes without its group).
UPGRADE_VARS = {"reconcile_memberships": True}


@pytest.fixture(scope="module")
def previous_main(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dbt project as the previous main had it, unpacked from git."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", PREVIOUS_MAIN],
        cwd=PROJECT_ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if archive.returncode != 0:
        pytest.fail(
            f"git archive {PREVIOUS_MAIN[:7]} failed ({archive.stderr.decode().strip()}); the "
            "upgrade test needs the repository's history (a full clone)."
        )
    root = tmp_path_factory.mktemp("previous_main")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    shutil.copyfile(root / "profiles.example.yml", root / "profiles.yml")
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
    """The compact cache (every legacy shape), built by the previous main's project."""
    with dbt_project.connect() as conn:
        small_cache(LegacyCache(conn).create())
        _build_with(previous_main, dict(dbt_project.settings), tmp_path)
        yield conn


def test_a_database_built_by_the_previous_main_upgrades_in_place(
    built_by_the_previous_main: psycopg.Connection,
    dbt_project: DbtProject,
    reference_project: DbtProject,
) -> None:
    conn = built_by_the_previous_main
    before = published(conn)
    assert before.group_ids, "the previous main published nothing"

    # the README's one-off step, and an ordinary run after it: every data test passes
    dbt_project.build(variables=UPGRADE_VARS, generic_tests=True)
    dbt_project.build(generic_tests=True)
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
