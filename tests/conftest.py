"""Shared fixtures: a real PostgreSQL (embedded 18 or the machine's 15 service), fresh
databases, and dbt invoked in-process (tests/support/dbt_project.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.company import a_company_set_up_as_the_readme_says  # noqa: F401  (a fixture)
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import BuiltSample, DbtProject

TEST_PGDATA = PROJECT_ROOT / ".pgdata" / "tests"
SERVICE_SETTINGS = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg",
        choices=["embedded", "service"],
        default=os.environ.get("TEST_PG", "embedded"),
        help="PostgreSQL for database tests: the embedded 18 server or the 15 service on :5432",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Tests marked `slow` (long property profiles) run only when -m names them."""
    markexpr = config.option.markexpr
    if "slow" not in markexpr:
        config.option.markexpr = f"({markexpr}) and not slow" if markexpr else "not slow"


ONE_SERVER_SKIP = pytest.mark.skip(
    reason="one_server: runs in the PostgreSQL 15 suite of `make test` (pytest --pg service -m db)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use pg_server get the `db` mark.  Tests marked `one_server` prove the
    harness's own behaviour -- its command line, its reports, the benchmark tool -- which does
    not change with the server's version: `make test` runs them once, in the PostgreSQL 15
    suite, and the embedded-18 suite skips them (saying so), as the two suites share two
    cores.  Everything the models' SQL does runs on both servers."""
    embedded = config.getoption("--pg") == "embedded"
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
        if embedded and item.get_closest_marker("one_server") and not _all_servers(config):
            item.add_marker(ONE_SERVER_SKIP)


def _all_servers(config: pytest.Config) -> bool:
    """`pytest --pg embedded -m one_server` runs them on 18 too."""
    return "one_server" in (config.option.markexpr or "")


def _service_is_up() -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        ):
            return True
    except psycopg.OperationalError:
        return False


ANALYST_ROLE = "analyst"


def _with_analyst_role(server: PgServer) -> PgServer:
    """The role the marts grant SELECT to.  Roles are server-wide and a build never creates
    one (a DBA does, on a user's server); on the test servers, which are ours, the tests do."""
    # made already by an earlier session, or by the other suite at the same moment: fine
    with (
        server.connect(autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation),
    ):
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(ANALYST_ROLE)))
    return server


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    kind = request.config.getoption("--pg")
    if kind == "service":
        if not _service_is_up():
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"],
                check=False,
                capture_output=True,
            )
            deadline = time.monotonic() + 30
            while not _service_is_up() and time.monotonic() < deadline:
                time.sleep(0.5)
        if not _service_is_up():
            pytest.fail(
                "PostgreSQL 15 service at 127.0.0.1:5432 is not reachable; start it with "
                "'pg_ctlcluster --skip-systemctl-redirect 15 main start'."
            )
        yield _with_analyst_role(PgServer(SERVICE_SETTINGS, "service"))
        return
    from validation import server

    already_running = server.status(TEST_PGDATA) is not None
    info = server.start(TEST_PGDATA, database="postgres")
    yield _with_analyst_role(PgServer(info.settings() | {"PGDATABASE": "postgres"}, "embedded"))
    if not already_running:
        # leave the machine as the session found it: no stray server after `make test`
        server.stop(TEST_PGDATA)


@pytest.fixture
def fresh_database(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """A new, empty database with a unique name; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    settings = pg_server.recreate_database(name)
    yield settings
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def dbt_work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dbt")
    shutil.copyfile(PROJECT_ROOT / "profiles.example.yml", work / "profiles.yml")
    return work


@pytest.fixture(scope="session")
def migration_database(pg_server: PgServer) -> str:
    """Name of the database the dbt tests rebuild for each test (fixed, so manifests reuse)."""
    return f"sprint59_test_{os.getpid()}"


@pytest.fixture(scope="session")
def _session_manifests() -> dict[str, Any]:
    return {}


@pytest.fixture
def dbt_project(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[DbtProject]:
    """An empty database (recreated for this test) and the dbt project pointed at it."""
    settings = pg_server.recreate_database(migration_database)
    yield DbtProject(settings, dbt_work_dir, _session_manifests)
    pg_server.drop_database(migration_database)


@pytest.fixture
def reference_project(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[DbtProject]:
    """A second database for from-scratch reference builds (see DbtProject.rebuild_from)."""
    name = f"{migration_database}_ref"
    settings = pg_server.recreate_database(name)
    yield DbtProject(settings, dbt_work_dir, _session_manifests)
    pg_server.drop_database(name)


@pytest.fixture(scope="module")
def module_template(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[str]:
    """A template database that the test module's ``build_once(project)`` loads and builds,
    once for the module; module_copy gives each test its own copy of it."""
    build_once: Callable[[DbtProject], None] = request.module.build_once
    settings = pg_server.recreate_database(migration_database)
    build_once(DbtProject(settings, dbt_work_dir, _session_manifests))
    template = f"{migration_database}_module"
    pg_server.clone_database(migration_database, template)
    yield template
    pg_server.drop_database(template)


@pytest.fixture
def module_copy(
    pg_server: PgServer, module_template: str, dbt_project: DbtProject
) -> psycopg.Connection:
    """This test's database as a copy of the module's template (CREATE DATABASE … TEMPLATE:
    about a second, where the builds take tens); an autocommit connection to it."""
    pg_server.clone_database(module_template, dbt_project.settings["PGDATABASE"])
    return dbt_project.connect()


@pytest.fixture(scope="session")
def built_sample(
    pg_server: PgServer,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[BuiltSample]:
    """The real-scale sample (scale 1, DEFAULT), loaded and built once per session.

    Read-only for tests: a test that changes data builds its own database.
    """
    from validation import sample

    name = f"sprint59_sample_{os.getpid()}"
    settings = pg_server.recreate_database(name)
    project = DbtProject(settings, dbt_work_dir, _session_manifests)
    with pg_server.connect(name, autocommit=True) as conn:
        sample.load_sample(conn, schema="public", environments=("DEFAULT",))
    started = time.perf_counter()
    result = project.build("default", unit_tests=True, artifacts=True)
    seconds = time.perf_counter() - started
    unit_tests = {
        r.node.name: str(r.status)
        for r in result.result.results
        if r.node.resource_type == "unit_test"
    }
    yield BuiltSample(project, seconds, unit_tests)
    pg_server.drop_database(name)
