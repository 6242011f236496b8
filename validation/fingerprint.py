"""Nothing changed, nothing run: the fingerprint of everything a build of one environment
reads, so that ``sprint59 build`` can skip dbt when a build would change nothing
(docs/design.md §12).

A fingerprint has three parts, each a digest:

- **source**: every ``cache_entries`` row the environment's build reads -- those whose
  environment normalises to it (the models' rule, ``targets.environment_of``)
  and those whose environment is no known one (every environment's build reports them) --
  by id and row version (``xmin``: any write to any column of a row makes a new one, an
  UPDATE that changes nothing and a delete-and-reload of the same content included); plus
  how many of them carry a stamp after now (the exceptions flag those, so the clock passing
  one changes the build).  stock_metadata, which the sectors read, is in the same
  table and the same set.  A row moved to another environment in place leaves this set: the
  aggregate changes.
- **code**: the files dbt reads (dbt_project.yml, the profile, models, macros, seeds, tests,
  analyses), the environment variables they name through ``env_var`` (not PG*), the dbt
  options given, the installed dbt packages' versions and this module's version.
- **state**: what the build reads of what it published: the environment's rows of the two
  tables (id and row version, whoever wrote them: another writer's row changes a build too),
  its ledger rows, its watermarks, the change log rows not every consumer has applied, and
  which of the project's relations exist (with the object ids of those in the target
  schema), so a rollback, a restore, a hand edit or a dropped table all change it.

The aggregates are sums of two 64-bit hashes of each row (its text, or for the large sets
one number per id and row version), with the row count: order-independent, one pass, no
sort.  Everything is read in one REPEATABLE READ, read-only transaction.  ``sync``
(validation/sync.py) calls ``compute`` every pass, as it is.

Recording (``record_if_settled``): the harness records a fingerprint only after dbt exited 0,
only if the build published into the schema fingerprinted (its run log has the row), and only
if the build changed nothing of the state part (a fingerprint taken before dbt started is
compared with one taken after): then the recorded inputs are a fixed point -- building them
again changes nothing -- whatever happens later.  A build that did change the tables records
nothing; the next build confirms and records.  A source write during a build makes the next
fingerprint differ, so it is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation import targets
from validation.connection import PROJECT_ROOT

# Bumped whenever what a fingerprint covers changes: every recorded one then differs.
FINGERPRINT_VERSION = "1"
RECORD_TABLE = "migration_build_fingerprints"  # macros/run_state/build_fingerprints.sql
PROJECT_FOLDERS = ("models", "macros", "seeds", "tests/dbt", "analyses", "snapshots")
PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml")
DBT_PACKAGES = ("dbt-core", "dbt-postgres", "dbt-adapters", "dbt-common", "psycopg2-binary")
# The target schema's bookkeeping a build reads (macros/run_state/), beside the models.
STATE_TABLES = (
    "migration_run_log",
    "migration_change_log",
    "migration_watermarks",
    "migration_run_claims",
    "migration_ledger_groups",
    "migration_ledger_memberships",
    "migration_ledger_environments",
    "migration_batch_seq",
)
# Options after which a build must run whatever the fingerprint says.
ALWAYS_BUILD = ("--full-refresh", "-f")

_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


@dataclass(frozen=True)
class BuildInputs:
    """What one harness build of one environment is: where dbt reads and writes, and how."""

    target: str
    environment: str
    schema: str  # the target schema: the two tables, the run log, the ledger
    source_schema: str  # where cache_entries is
    dbt_args: tuple[str, ...]


@dataclass(frozen=True)
class Fingerprint:
    source: str
    code: str
    state: str

    @property
    def digest(self) -> str:
        parts = f"v{FINGERPRINT_VERSION}|{self.source}|{self.code}|{self.state}"
        return hashlib.sha256(parts.encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """The fingerprint recorded by the last build that left nothing to change."""

    fingerprint: str
    invocation_id: str
    recorded_at: datetime  # UTC
    run_number: int | None  # that build's place among the environment's runs in the run log


def inputs_for(target: str, dbt_args: Sequence[str]) -> BuildInputs | None:
    """The build's inputs as dbt will see them, or None when they cannot be told for sure (an
    unreadable --vars, an empty DBT_SCHEMA): then the build runs."""
    variables: dict[str, Any] = {}
    args = list(dbt_args)
    for index, arg in enumerate(args):
        text = None
        if arg == "--vars" and index + 1 < len(args):
            text = args[index + 1]
        elif arg.startswith("--vars="):
            text = arg.removeprefix("--vars=")
        if text is not None:
            import yaml

            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                return None
            if not isinstance(loaded, dict):
                return None
            variables.update(loaded)
    environment = str(variables.get("environment") or targets.environment_for(target))
    environment = environment.strip().upper()
    schema = os.environ.get("DBT_SCHEMA", "public")
    source_schema = variables.get("source_schema") or os.environ.get("DBT_SOURCE_SCHEMA", "public")
    if environment not in targets.ENVIRONMENTS or not schema or not source_schema:
        return None
    return BuildInputs(target, environment, schema, str(source_schema), tuple(args))


def always_builds(dbt_args: Sequence[str]) -> bool:
    """--full-refresh asks for a rebuild: never skipped."""
    return any(arg in ALWAYS_BUILD for arg in dbt_args)


# --- code -----------------------------------------------------------------------------------


def _project_files(project_dir: Path) -> list[Path]:
    files = [project_dir / name for name in PROJECT_FILES if (project_dir / name).is_file()]
    for folder in PROJECT_FOLDERS:
        root = project_dir / folder
        if root.is_dir():
            files += sorted(
                p
                for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
            )
    return files


def _profiles_file(project_dir: Path) -> Path:
    directory = os.environ.get("DBT_PROFILES_DIR")
    return (Path(directory) if directory else project_dir) / "profiles.yml"


def code_digest(inputs: BuildInputs, project_dir: Path = PROJECT_ROOT) -> str:
    """The files dbt reads, the variables they name, the options given and dbt's versions."""
    digest = hashlib.sha256()
    named: set[str] = set()
    profiles = _profiles_file(project_dir)
    for path in [*_project_files(project_dir), profiles]:
        try:
            content = path.read_bytes()
        except OSError:
            content = b"(missing)"
        where = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
        digest.update(f"\0file {where} {len(content)}\0".encode())
        digest.update(content)
        named.update(_ENV_VAR.findall(content.decode("utf-8", errors="replace")))
    # the connection's PG* settings are left out: the record lives in the database they name,
    # and a digest of a password is no thing to store
    variables = {name: os.environ.get(name) for name in sorted(named) if not name.startswith("PG")}
    versions = {}
    for package in DBT_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    described = {
        "target": inputs.target,
        "environment": inputs.environment,
        "schema": inputs.schema,
        "source_schema": inputs.source_schema,
        "args": list(inputs.dbt_args),
        "env": variables,
        "versions": versions,
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()


# --- the database ---------------------------------------------------------------------------

# A set of rows as (count, two order-independent 64-bit hash sums) of each row's text, or,
# cheaper for the large sets, of one bigint per row: (id << 32) + row version, which is one
# number per (id, xmin) pair (ids are int4, xmin a 32-bit transaction id).
_AGGREGATE = sql.SQL(
    "count(*), coalesce(sum(hashtextextended({row}, 0)), 0), "
    "coalesce(sum(hashtextextended({row}, 1)), 0)"
)
_AGGREGATE_INT = sql.SQL(
    "count(*), coalesce(sum(hashint8extended({row}, 0)), 0), "
    "coalesce(sum(hashint8extended({row}, 1)), 0)"
)

# the rows whose environment, read by the models' rule (targets.environment_of, the macro
# normalised_environment), is this one or none of the known ones (NULL included): every row
# but those of the other environments
SOURCE_SQL = sql.SQL(
    "select {aggregate}, "
    "count(*) filter (where c.created_at > now() or c.updated_at > now()) "
    "from {cache} as c "
    "where not coalesce({environment} = any(%(other_environments)s), false)"
)
# id and row version: any write to any column of a row (value, key, type, environment,
# stamps) makes a new row version with a new xmin, so the columns need not be read (reading
# and hashing every value cost 5x as much); the same trust as int_stock_sectors' change
# detection (source_row_version).
SOURCE_ROW = sql.SQL("(c.id::bigint << 32) + c.xmin::text::bigint")

# (name, the query over this environment's rows, each row's text); the relations are the
# target schema's (_STATE_RELATIONS)
STATE_SETS: tuple[tuple[str, str, str], ...] = (
    (
        "definition_groups",
        "select {aggregate} from {groups} as g where g.environment = %(environment)s",
        "(g.id::bigint << 32) + g.xmin::text::bigint",
    ),
    (
        "group_memberships",
        "select {aggregate} from {memberships} as m "
        "inner join {groups} as g on g.id = m.group_id where g.environment = %(environment)s",
        "(m.id::bigint << 32) + m.xmin::text::bigint",
    ),
    (
        "migration_ledger_groups",
        "select {aggregate} from {ledger_groups} as l where l.environment = %(environment)s",
        "l::text",
    ),
    (
        "migration_ledger_memberships",
        "select {aggregate} from {ledger_memberships} as lm "
        "inner join {ledger_groups} as l on l.group_id = lm.group_id "
        "where l.environment = %(environment)s",
        # its two ids (recorded_at is what no build reads)
        "(lm.membership_id::bigint << 32) + lm.group_id",
    ),
    (
        "migration_ledger_environments",
        "select {aggregate} from {ledger_environments} as e where e.environment = %(environment)s",
        "e::text",
    ),
    (
        "migration_watermarks",
        "select {aggregate} from {watermarks} as w where w.environment = %(environment)s",
        "w::text",
    ),
    (
        # what some consumer has not applied yet: the rest every consumer has, and the next
        # publish prunes it (prune_change_log, macros/run_state/change_tracking.sql)
        "migration_change_log",
        "select {aggregate} from {change_log} as cl where cl.environment = %(environment)s "
        "and cl.batch > coalesce((select min(w.batch) from {watermarks} as w "
        "where w.environment = %(environment)s and w.consumer <> 'definition_groups.stocks'), -1)",
        "cl::text",
    ),
)
_STATE_RELATIONS = {
    "groups": "definition_groups",
    "memberships": "group_memberships",
    "ledger_groups": "migration_ledger_groups",
    "ledger_memberships": "migration_ledger_memberships",
    "ledger_environments": "migration_ledger_environments",
    "watermarks": "migration_watermarks",
    "change_log": "migration_change_log",
}

CATALOG_SQL = """
select n.nspname, c.relname, c.relkind::text, case when n.nspname = %(schema)s then c.oid end
from pg_class as c
inner join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = any(%(schemas)s) and c.relname = any(%(names)s)
order by 1, 2
"""


def project_relations(project_dir: Path = PROJECT_ROOT) -> list[str]:
    """The relations a build makes or reads in its schemas: its models, seeds, state tables."""
    names = {p.stem for p in (project_dir / "models").rglob("*.sql")}
    names |= {p.stem for p in (project_dir / "seeds").glob("*.csv")}
    return sorted(names | set(STATE_TABLES))


def project_schemas(inputs: BuildInputs) -> list[str]:
    """The target schema and the environment's own (macros/generate_schema_name.sql)."""
    suffix = inputs.environment.lower()
    return [inputs.schema] + [
        f"{inputs.schema}_{kind}_{suffix}" for kind in ("staging", "intermediate", "ops")
    ]


def _aggregate_digest(rows: Sequence[Any]) -> str:
    return hashlib.sha256(repr([str(value) for value in rows]).encode()).hexdigest()


def source_digest(conn: psycopg.Connection[Any], inputs: BuildInputs) -> str:
    cache = sql.Identifier(inputs.source_schema, "cache_entries")
    found = conn.execute(
        "select to_regclass(format('%%I.%%I', %s::text, 'cache_entries'))::oid",
        (inputs.source_schema,),
    ).fetchone()
    if found is None or found[0] is None:
        return "(no cache_entries)"
    query = SOURCE_SQL.format(
        aggregate=_AGGREGATE_INT.format(row=SOURCE_ROW),
        cache=cache,
        environment=targets.environment_of(sql.SQL("c.environment")),
    )
    others = [name for name in targets.ENVIRONMENTS if name != inputs.environment]
    row = conn.execute(query, {"other_environments": others}).fetchone()
    assert row is not None
    return _aggregate_digest([found[0], *row])


def state_digest(
    conn: psycopg.Connection[Any], inputs: BuildInputs, project_dir: Path = PROJECT_ROOT
) -> str:
    catalog = conn.execute(
        CATALOG_SQL,
        {
            "schema": inputs.schema,
            "schemas": project_schemas(inputs),
            "names": project_relations(project_dir),
        },
    ).fetchall()
    present = {name for schema, name, *_ in catalog if schema == inputs.schema}
    parts: list[Any] = [tuple(row) for row in catalog]
    identifiers = {
        key: sql.Identifier(inputs.schema, name) for key, name in _STATE_RELATIONS.items()
    }
    for name, rows, text in STATE_SETS:
        needed = {n for key, n in _STATE_RELATIONS.items() if "{" + key + "}" in rows}
        if not needed <= present:
            parts.append((name, "(missing)"))
            continue
        aggregate = _AGGREGATE if text.endswith("::text") else _AGGREGATE_INT
        query = sql.SQL(rows).format(aggregate=aggregate.format(row=sql.SQL(text)), **identifiers)
        found = conn.execute(query, {"environment": inputs.environment}).fetchone()
        parts.append((name, *(found or ())))
    return _aggregate_digest(parts)


def _snapshot(conn: psycopg.Connection[Any]) -> None:
    """One read-only snapshot, with the settings that make every row's text the same each
    time (time zone, date style), and no JIT (it costs more than these scans)."""
    conn.execute("set transaction isolation level repeatable read, read only")
    conn.execute(
        "select set_config('timezone', 'UTC', true), set_config('datestyle', 'ISO, YMD', true)"
    )
    conn.execute(
        "select set_config('jit', 'off', true), set_config('intervalstyle', 'postgres', true)"
    )


def compute(
    conn: psycopg.Connection[Any], inputs: BuildInputs, project_dir: Path = PROJECT_ROOT
) -> Fingerprint:
    """The fingerprint of a build of ``inputs`` now, in one snapshot (``conn`` not in a
    transaction; it is left as it was)."""
    code = code_digest(inputs, project_dir)
    with conn.transaction():
        _snapshot(conn)
        source = source_digest(conn, inputs)
        state = state_digest(conn, inputs, project_dir)
    return Fingerprint(source=source, code=code, state=state)


def compute_state(
    conn: psycopg.Connection[Any], inputs: BuildInputs, project_dir: Path = PROJECT_ROOT
) -> str:
    with conn.transaction():
        _snapshot(conn)
        return state_digest(conn, inputs, project_dir)


# --- recording ------------------------------------------------------------------------------

RECORDED_SQL = """
select f.fingerprint, f.invocation_id, f.recorded_at,
    (select count(*) from {run_log} as r
     where r.environment = f.environment and r.run_started_at <= (
         select max(b.run_started_at) from {run_log} as b
         where b.environment = f.environment and b.invocation_id = f.invocation_id))
from {record} as f
where f.environment = %s
"""


def _exists(conn: psycopg.Connection[Any], schema: str, name: str) -> bool:
    row = conn.execute(
        "select to_regclass(format('%%I.%%I', %s::text, %s::text)) is not null", (schema, name)
    ).fetchone()
    return bool(row and row[0])


def recorded(conn: psycopg.Connection[Any], inputs: BuildInputs) -> Recorded | None:
    """The environment's recorded fingerprint, or None (no record, no table, no run log)."""
    schema = inputs.schema
    if not (_exists(conn, schema, RECORD_TABLE) and _exists(conn, schema, targets.RUN_LOG)):
        return None
    query = sql.SQL(RECORDED_SQL).format(
        run_log=sql.Identifier(schema, targets.RUN_LOG), record=sql.Identifier(schema, RECORD_TABLE)
    )
    row = conn.execute(query, (inputs.environment,)).fetchone()
    if row is None:
        return None
    fingerprint, invocation, when, number = row
    return Recorded(str(fingerprint), str(invocation), when.replace(tzinfo=UTC), number or None)


def unchanged_since(recorded_build: Recorded, inputs: BuildInputs) -> str:
    """The message of a skipped build."""
    from validation.command import harness_command

    run = f"run {recorded_build.run_number}" if recorded_build.run_number else "the last run"
    when = f"{recorded_build.recorded_at:%Y-%m-%d %H:%M:%S}"
    return (
        f"nothing changed since {run} of {inputs.environment} (dbt invocation "
        f"{recorded_build.invocation_id[:8]}, {when} UTC); --force builds anyway: "
        f"{harness_command()} build --target {inputs.target} --force"
    )


NEW_RUN_SQL = """
select invocation_id from {run_log}
where environment = %s and run_started_at >= %s
order by run_started_at desc
limit 1
"""


def record_if_settled(
    conn: psycopg.Connection[Any],
    inputs: BuildInputs,
    before: Fingerprint,
    started: datetime,
    project_dir: Path = PROJECT_ROOT,
) -> str:
    """After dbt exited 0: record ``before`` (taken before dbt started) when the build
    published into the schema fingerprinted and changed nothing of the state part; else
    remove the environment's record.  Returns a line saying which."""
    schema = inputs.schema
    record = sql.Identifier(schema, RECORD_TABLE)
    if not (_exists(conn, schema, RECORD_TABLE) and _exists(conn, schema, targets.RUN_LOG)):
        return f"fingerprint not recorded: {schema}.{RECORD_TABLE} does not exist"
    run_log = sql.Identifier(schema, targets.RUN_LOG)
    since = (started - timedelta(seconds=1)).replace(tzinfo=None)
    row = conn.execute(
        sql.SQL(NEW_RUN_SQL).format(run_log=run_log), (inputs.environment, since)
    ).fetchone()
    after = compute_state(conn, inputs, project_dir)
    with conn.transaction():
        conn.execute(sql.SQL("delete from {} where environment = %s").format(record),
                     (inputs.environment,))  # fmt: skip
        if row is None:
            return (
                f"fingerprint not recorded: this build logged no run of {inputs.environment} "
                f"in {schema}.{targets.RUN_LOG} (a partial selection?); the next build runs"
            )
        if after != before.state:
            return (
                "the build changed the tables; the next build confirms there is nothing left to "
                "do, and records it"
            )
        conn.execute(
            sql.SQL(
                "insert into {} (environment, fingerprint, invocation_id, recorded_at) "
                "values (%s, %s, %s, (clock_timestamp() at time zone 'UTC'))"
            ).format(record),
            (inputs.environment, before.digest, row[0]),
        )
    return (
        "nothing was left to change: fingerprint recorded (the next build skips until "
        "something changes)"
    )
