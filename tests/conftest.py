"""Shared fixtures: a real PostgreSQL (embedded 18 or the machine's 15 service), fresh
databases, and dbt invoked in-process with a parsed manifest reused per target."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from validation.dbt import process_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@dataclass(frozen=True)
class PgServer:
    """Admin connection settings of the server under test."""

    settings: Mapping[str, str]
    kind: str

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(
            host=self.settings["PGHOST"],
            port=self.settings["PGPORT"],
            user=self.settings["PGUSER"],
            dbname=dbname,
            **kwargs,
        )

    def database_settings(self, dbname: str) -> dict[str, str]:
        return {**self.settings, "PGDATABASE": dbname}

    def recreate_database(self, dbname: str) -> dict[str, str]:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        return self.database_settings(dbname)

    def drop_database(self, dbname: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )

    def terminate_connections(self, dbname: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (dbname,),
            )

    def clone_database(self, template: str, name: str) -> None:
        """Replace ``name`` by a copy of ``template`` (CREATE DATABASE … TEMPLATE)."""
        self.terminate_connections(template)
        self.drop_database(name)
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )


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


# --- dbt in-process -------------------------------------------------------------------------


class DbtRunFailed(AssertionError):
    """dbt reported failure; the message carries what dbt said."""


@dataclass
class DbtProject:
    """Runs this dbt project in-process against one database, reusing parsed manifests."""

    settings: Mapping[str, str]
    work_dir: Path
    manifests: dict[str, Any] = field(default_factory=dict)

    def connect(self) -> psycopg.Connection:
        """An autocommit connection to this project's database."""
        s = self.settings
        return psycopg.connect(
            host=s["PGHOST"],
            port=s["PGPORT"],
            user=s["PGUSER"],
            dbname=s["PGDATABASE"],
            autocommit=True,
        )

    def _env(self) -> dict[str, str]:
        return {**self.settings, "DO_NOT_TRACK": "1", "DBT_SCHEMA": "public"}

    def _common(self, target: str) -> list[str]:
        return [
            "--project-dir", str(PROJECT_ROOT),
            "--profiles-dir", str(self.work_dir),
            "--target", target,
            "--target-path", str(self.work_dir / f"target-{target}"),
            "--log-path", str(self.work_dir / "logs"),
            "--quiet",
        ]  # fmt: skip

    def _manifest(self, target: str) -> Any:
        from dbt.cli.main import dbtRunner

        key = f"{self.settings['PGDATABASE']}/{target}"
        if key not in self.manifests:
            with process_environment(self._env()):
                result = dbtRunner().invoke(["parse", *self._common(target)])
            if not result.success:
                raise DbtRunFailed(f"dbt parse failed: {result.exception}")
            self.manifests[key] = result.result
        return self.manifests[key]

    def invoke(
        self,
        command: str,
        *,
        target: str = "default",
        variables: Mapping[str, Any] | None = None,
        args: tuple[str, ...] = (),
        expect_success: bool = True,
    ) -> Any:
        from dbt.cli.main import dbtRunner

        argv = [*command.split(), *self._common(target), *args]
        if variables:
            argv += ["--vars", json.dumps(dict(variables))]
        manifest = None if variables else self._manifest(target)
        with process_environment(self._env()):
            result = dbtRunner(manifest=manifest).invoke(argv)
        if expect_success and not result.success:
            raise DbtRunFailed(_failure_text(result))
        if not expect_success and result.success:
            raise DbtRunFailed(f"dbt {command} succeeded but was expected to fail")
        return result

    def build(self, target: str = "default", **kwargs: Any) -> Any:
        return self.invoke("build", target=target, **kwargs)


def _failure_text(result: Any) -> str:
    if result.exception is not None:
        return f"dbt failed: {result.exception}"
    messages = []
    for node_result in getattr(result.result, "results", []) or []:
        if str(node_result.status) in {"error", "fail"}:
            messages.append(f"{node_result.node.unique_id}: {node_result.message}")
    return "dbt failed:\n" + "\n".join(messages)


def failure_messages(result: Any) -> str:
    """Everything dbt said about failed nodes (for asserting on error messages)."""
    return _failure_text(result)


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


@dataclass(frozen=True)
class BuiltSample:
    """A database holding the DEFAULT sample cache and the tables one build made of it."""

    project: DbtProject
    settings: Mapping[str, str]
    build_seconds: float

    def connect(self) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(
            host=s["PGHOST"],
            port=s["PGPORT"],
            user=s["PGUSER"],
            dbname=s["PGDATABASE"],
            autocommit=True,
        )


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
    project.build("default")
    yield BuiltSample(project, settings, time.perf_counter() - started)
    pg_server.drop_database(name)
