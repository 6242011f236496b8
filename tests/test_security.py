"""Security: the analyst role reads the marts and nothing else; no secret in the repository;
the harness sends values as query parameters, never inside SQL text."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache

# --- the analyst role -----------------------------------------------------------------------

SPEC_TABLES = {("public", "definition_groups"), ("public", "group_memberships")}
SURELY_FORBIDDEN = {
    ("public", "cache_entries"),
    ("public", "migration_run_log"),
    ("public_ops_default", "migration_exceptions"),
    ("public_staging_default", "stg_legacy__cache_entries"),
}


def _granted_models(project: DbtProject) -> set[tuple[str, str]]:
    """The relations of every model whose dbt config grants SELECT to the analyst role."""
    manifest = project._manifest("default")
    return {
        (node.schema, node.alias or node.name)
        for node in manifest.nodes.values()
        if node.resource_type == "model"
        and "analyst" in (node.config.grants or {}).get("select", [])
    }


def _every_relation(conn: psycopg.Connection) -> set[tuple[str, str, str]]:
    """(schema, name, kind) of every table, view and sequence outside the system schemas."""
    rows = conn.execute(
        "select n.nspname, c.relname, c.relkind from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p', 'v', 'm', 'S')"
        " and n.nspname not in ('pg_catalog', 'information_schema')"
        " and n.nspname not like 'pg\\_%'"
    ).fetchall()
    return {(schema, name, kind) for schema, name, kind in rows}


def _as_role(conn: psycopg.Connection, role: str, statement: sql.Composable) -> str | None:
    """Run one statement as `role`; the error class name, or None when it succeeded."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            conn.execute(statement)
            raise _Rollback
    except _Rollback:
        return None
    except psycopg.Error as exc:
        return type(exc).__name__


class _Rollback(Exception):
    """Leaves the transaction of a statement that succeeded (nothing is kept)."""


# A run of the two tables only (the grant checks below read their privileges): the grant step
# is each model's own, so such a run grants and revokes on them exactly as a whole build does,
# without building and testing everything else again.  A first build is always whole.
THE_TWO_TABLES = ("--select", "definition_groups", "group_memberships")


@pytest.fixture
def built(dbt_project: DbtProject) -> Iterator[tuple[DbtProject, psycopg.Connection]]:
    s = dbt_project.settings
    conn = psycopg.connect(
        host=s["PGHOST"], port=s["PGPORT"], user=s["PGUSER"], dbname=s["PGDATABASE"],
        autocommit=True,
    )  # fmt: skip
    small_cache(LegacyCache(conn).create())
    dbt_project.build()
    yield dbt_project, conn
    conn.close()


def test_analyst_role_reads_the_marts_and_nothing_else(built: Any) -> None:
    project, conn = built
    readable = _granted_models(project)
    marts = {  # the two tables and the analyst models; not the operators' reports
        (node.schema, node.alias or node.name)
        for node in project._manifest("default").nodes.values()
        if node.resource_type == "model" and "marts" in node.fqn and "operations" not in node.fqn
    }
    assert marts > SPEC_TABLES, "the analyst models are missing"
    assert readable == marts, "the analyst role should read exactly the marts"
    for schema, table in sorted(readable):
        relation = sql.Identifier(schema, table)
        assert _as_role(conn, "analyst", sql.SQL("select * from {}").format(relation)) is None, (
            f"analyst cannot read {schema}.{table}"
        )
        first_column = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s and ordinal_position = 1",
            (schema, table),
        ).fetchone()
        assert first_column is not None
        column = sql.Identifier(first_column[0])
        for statement in (
            sql.SQL("delete from {relation}"),
            sql.SQL("update {relation} set {column} = {column}"),
            sql.SQL("insert into {relation} select * from {relation} limit 1"),
            sql.SQL("truncate {relation}"),
        ):
            error = _as_role(conn, "analyst", statement.format(relation=relation, column=column))
            assert error == "InsufficientPrivilege", f"{statement!r} on {table}: {error}"
    everything_else = {r for r in _every_relation(conn) if r[:2] not in readable}
    assert {r[:2] for r in everything_else} >= SURELY_FORBIDDEN
    for schema, name, kind in sorted(everything_else):
        if kind == "S":
            statement = sql.SQL("select nextval({})").format(sql.Literal(f'"{schema}"."{name}"'))
        else:
            statement = sql.SQL("select 1 from {} limit 1").format(sql.Identifier(schema, name))
        error = _as_role(conn, "analyst", statement)
        assert error == "InsufficientPrivilege", f"analyst used {schema}.{name}: {error}"
    role = conn.execute(
        "select rolcanlogin, rolsuper, rolcreaterole from pg_roles where rolname = 'analyst'"
    ).fetchone()
    assert role == (False, False, False), "the analyst role must be a plain NOLOGIN role"


def test_grants_are_kept_and_other_privileges_left_alone_on_incremental_runs(built: Any) -> None:
    """dbt's default grant step revokes privileges it was not configured with; ours only
    manages SELECT, so a legacy writer's INSERT granted by a DBA survives the next run."""
    project, conn = built
    writer = f"legacy_writer_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(writer)))
    try:
        conn.execute(
            sql.SQL("grant insert on public.definition_groups to {}").format(sql.Identifier(writer))
        )
        project.build(args=THE_TWO_TABLES)
        privileges = conn.execute(
            "select grantee, privilege_type from information_schema.role_table_grants"
            " where table_schema = 'public' and table_name = 'definition_groups'"
            " and grantee <> current_user order by 1, 2"
        ).fetchall()
        assert privileges == sorted([("analyst", "SELECT"), (writer, "INSERT")])
    finally:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(writer)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(writer)))


@pytest.fixture
def unprivileged(pg_server: PgServer) -> Iterator[tuple[str, str, str]]:
    """A login role that may not create roles, owning a fresh database; and a role name."""
    tag = uuid.uuid4().hex[:8]
    user, database, role = f"migrator_{tag}", f"sprint59_unpriv_{tag}", f"analysts_{tag}"
    with pg_server.connect(autocommit=True) as admin:
        admin.execute(
            sql.SQL("create role {} login nosuperuser nocreaterole nocreatedb").format(
                sql.Identifier(user)
            )
        )
        admin.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(database), sql.Identifier(user)
            )
        )
    try:
        yield user, database, role
    finally:
        pg_server.drop_database(database)
        with pg_server.connect(autocommit=True) as admin:
            for name in (role, user):
                admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def test_a_user_who_may_not_create_roles_still_builds(
    pg_server: PgServer, dbt_work_dir: Path, unprivileged: tuple[str, str, str], tmp_path: Path
) -> None:
    """Role missing: the run succeeds without grants and says so; once a DBA creates the
    role, the same user's next run grants to it."""
    user, database, role = unprivileged
    settings = {**pg_server.database_settings(database), "PGUSER": user}
    with psycopg.connect(
        host=settings["PGHOST"], port=settings["PGPORT"], user=user, dbname=database,
        autocommit=True,
    ) as conn:  # fmt: skip
        small_cache(LegacyCache(conn).create())
        # a work directory of its own: the session's dbt.log rotates at 10 MB in a full run
        shutil.copyfile(dbt_work_dir / "profiles.yml", tmp_path / "profiles.yml")
        project = DbtProject(settings, tmp_path, {}, writes_log=True)
        log = tmp_path / "logs" / "dbt.log"
        logged_before = log.read_text() if log.exists() else ""

        project.build(variables={"analyst_role": role})

        logged = log.read_text()[len(logged_before) :]
        assert f"Role '{role}' does not exist, so the marts are built without analyst" in logged
        assert _grantees(conn) == set()

        with pg_server.connect(autocommit=True) as admin:  # a DBA creates the role
            admin.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
        project.build(variables={"analyst_role": role}, args=THE_TWO_TABLES)

        assert _grantees(conn) == {role}
        error = _as_role_admin(pg_server, database, role, "select count(*) from definition_groups")
        assert error is None


def _grantees(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select grantee from information_schema.role_table_grants where table_schema = 'public'"
        " and table_name in ('definition_groups', 'group_memberships')"
        " and privilege_type = 'SELECT' and grantee <> current_user"
    ).fetchall()
    return {r[0] for r in rows}


def _as_role_admin(pg_server: PgServer, database: str, role: str, statement: str) -> str | None:
    with pg_server.connect(database, autocommit=True) as admin:
        return _as_role(admin, role, sql.SQL(statement))  # type: ignore[arg-type]


def test_a_build_never_creates_a_role_even_as_superuser_and_grants_follow_the_var(
    dbt_project: DbtProject,
) -> None:
    """Roles are server-wide: a build run by a superuser still leaves a missing role missing
    (and warns); once it exists, the run grants to it; '' revokes it."""
    role = f"analysts_{uuid.uuid4().hex[:8]}"
    s = dbt_project.settings
    with psycopg.connect(
        host=s["PGHOST"], port=s["PGPORT"], user=s["PGUSER"], dbname=s["PGDATABASE"],
        autocommit=True,
    ) as conn:  # fmt: skip
        try:
            small_cache(LegacyCache(conn).create())
            dbt_project.build(variables={"analyst_role": role})
            created = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            assert created is None, "the build created a server-wide role"
            assert _grantees(conn) == set()

            conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
            dbt_project.build(variables={"analyst_role": role}, args=THE_TWO_TABLES)
            assert _grantees(conn) == {role}

            dbt_project.build(variables={"analyst_role": ""}, args=THE_TWO_TABLES)  # grants off

            assert _grantees(conn) == set()
        finally:
            if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


# --- secrets and SQL text in the repository -------------------------------------------------


def _repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    files = [PROJECT_ROOT / name for name in listed.split("\0") if name]
    return [f for f in files if f.is_file() and f.stat().st_size < 2_000_000]


# Built from pieces so this file does not match itself.
_PASSWORD = "pass" + "word"
SECRET_PATTERNS = {
    # scheme://user:secret@host -- a DSN carrying a password (placeholders excepted)
    "DSN with a password": re.compile(
        r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?![{$<*])[^\s/@'\"]+@", re.IGNORECASE
    ),
    # password=secret inside a libpq connection string
    "libpq password": re.compile(
        r"\b" + _PASSWORD + r"\s*=\s*(?![{$<*'\"`\s]|%\(|\w+\))[^\s'\";,)`]+", re.IGNORECASE
    ),
    # PGPASSWORD=secret in a shell line, Makefile, Dockerfile or document
    "PGPASSWORD value": re.compile(r"\bPG" + _PASSWORD.upper() + r"=(?![$\s'\"`]|$)\S+"),
}
# Deliberately fake values that tests feed the code under test (trust-auth test servers).
DUMMY_SECRETS = {
    "tests/test_validation_suite.py": ("p%40ss%2Fword",),  # URL-quoting of a password
}
YAML_PASSWORD = re.compile(r"^\s*" + _PASSWORD + r"\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
SAFE_YAML_VALUE = re.compile(r"""^(|''|""|["']?\{\{\s*env_var\(.*\)\s*\}\}["']?)\s*(#.*)?$""")


def test_no_password_or_dsn_with_a_password_in_the_repository() -> None:
    found = []
    for path in _repository_files():
        if path.suffix in {".png", ".jpg", ".gz", ".zip", ".msgpack", ".pickle"}:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        relative = path.relative_to(PROJECT_ROOT)
        if path.suffix == ".py":
            text = _python_string_literals(text)
        dummies = DUMMY_SECRETS.get(str(relative), ())
        for label, pattern in SECRET_PATTERNS.items():
            found += [
                f"{relative}: {label}: {m.group(0)}"
                for m in pattern.finditer(text)
                if not any(dummy in m.group(0) for dummy in dummies)
            ]
        if path.suffix in {".yml", ".yaml"}:
            for m in YAML_PASSWORD.finditer(text):
                if not SAFE_YAML_VALUE.match(m.group(1).strip()):
                    found.append(f"{relative}: YAML {_PASSWORD}: {m.group(0).strip()}")
        if path.suffix == ".py":
            found += [f"{relative}: {issue}" for issue in _python_password_arguments(path)]
    assert not found, "\n".join(found)


def _python_string_literals(source: str) -> str:
    """Only the string constants of a Python file (a keyword argument fed a variable is fine)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    return "\n".join(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _python_password_arguments(path: Path) -> list[str]:
    """password="literal" keyword arguments and dict entries."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and (node.arg or "").lower() == _PASSWORD
            and isinstance(node.value, ast.Constant)
            and node.value.value
        ):
            found.append(f"line {node.value.lineno}: {_PASSWORD}= a literal")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and str(key.value).lower() == _PASSWORD
                    and isinstance(value, ast.Constant)
                    and value.value
                ):
                    found.append(f"line {key.lineno}: {{'{_PASSWORD}': a literal}}")
    return found


EXECUTING = {"execute", "executemany", "copy", "stream", "SQL", "Composed"}


def _formatted_with_values(node: ast.AST) -> str | None:
    """How an expression builds SQL text from values, or None when it does not."""
    for part in ast.walk(node):
        if isinstance(part, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in part.values
        ):
            return "an f-string"
        if (
            isinstance(part, ast.BinOp)
            and isinstance(part.op, ast.Mod)
            and isinstance(part.left, ast.Constant)
            and isinstance(part.left.value, str)
        ):
            return "%-formatting"
        if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add):
            sides = (part.left, part.right)
            if any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides) and (
                not all(isinstance(s, ast.Constant) for s in sides)
            ):
                return "string concatenation"
        if (
            isinstance(part, ast.Call)
            and isinstance(part.func, ast.Attribute)
            and part.func.attr == "format"
            and isinstance(part.func.value, ast.Constant)
        ):
            return "str.format"
    return None


def sql_built_from_values(path: Path) -> list[str]:
    """Calls that execute SQL (or build psycopg sql.SQL) from text formatted with values."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in EXECUTING:
            how = _formatted_with_values(node.args[0])
            if how:
                found.append(f"{path.name}:{node.lineno}: {name}() of SQL built by {how}")
    return found


def test_the_validation_harness_passes_values_as_query_parameters() -> None:
    files = sorted((PROJECT_ROOT / "validation").rglob("*.py"))
    assert files
    found = [issue for path in files for issue in sql_built_from_values(path)]
    assert not found, "\n".join(found)


def test_the_static_check_catches_sql_built_from_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(conn, key, sql):\n"
        "    conn.execute(f\"select * from t where k = '{key}'\")\n"
        "    conn.execute(\"select * from t where k = '%s'\" % key)\n"
        '    conn.execute("select * from t where k = \'" + key + "\'")\n'
        "    conn.execute(\"select * from t where k = '{}'\".format(key))\n"
        '    conn.execute(sql.SQL(f"select {key}"))\n'
        '    conn.execute("select * from t where k = %s", (key,))\n'
    )
    flagged = {int(issue.split(":")[1]) for issue in sql_built_from_values(bad)}
    assert flagged == {2, 3, 4, 5, 6}  # line 7 passes the value as a parameter


def test_the_secret_scan_catches_passwords() -> None:
    word = _PASSWORD
    leaks = [
        "postgresql://migrator:" + "hunter2@db.internal:5432/stocks",
        f"host=db user=migrator {word}=hunter2 dbname=stocks",
        f"export PG{word.upper()}=hunter2",
    ]
    for leak in leaks:
        assert any(p.search(leak) for p in SECRET_PATTERNS.values()), leak
    fine = [
        "postgresql://postgres@/sprint59?host=/tmp",
        "postgresql://${PGUSER}:${PGPASSWORD}@host/db",
        f"PG{word.upper()} or ~/.pgpass",
        f"{word}=%(password)s",
    ]
    for text in fine:
        assert not any(p.search(text) for p in SECRET_PATTERNS.values()), text
    assert SAFE_YAML_VALUE.match("\"{{ env_var('PG" + word.upper() + "', '') }}\"")
    assert not SAFE_YAML_VALUE.match("hunter2")
