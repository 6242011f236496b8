"""One place that knows the targets, their environments, the run lock and where a target's
tables are: every command of the harness asks here, so they all find the same tables.

Where the tables of a target are, in this order:

1. ``--schema`` (and ``--source-schema``) when the operator names them, else ``DBT_SCHEMA``
   (and ``DBT_SOURCE_SCHEMA``), the variables dbt itself builds with;
2. the newest build of the target's environment that the database's run logs record
   (``<schema>.migration_run_log``, one row per build, written in the build's publishing
   transaction with the schemas it read ``cache_entries`` from and built the operators' views
   in): the target's own build, whatever other dbt command (``docs generate``, ``source
   freshness``, ``run-operation``) has since rewritten a manifest;
3. ``public`` for the two tables, ``<schema>_ops_<env>`` beside them for the operations marts
   (the exceptions, the reconciliation and the retirement readiness), ``public`` for
   ``cache_entries``.

``cache_entries``' schema is ``--source-schema``, else the one the chosen build recorded, else
``DBT_SOURCE_SCHEMA``, else ``public``.  ``validate --manifest FILE`` still takes the
relations from a manifest the operator names.

Each answer carries where it came from, so an error can say where the command looked, and why.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.connection import PROJECT_ROOT
from validation.errors import PermissionProblem, UserFacingError


def _project_environments() -> tuple[str, ...]:
    """The environments, as dbt_project.yml's var ``environments`` lists them (the one place
    they are defined; the models read the same var)."""
    import yaml

    project = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    return tuple(str(name) for name in project["vars"]["environments"])


ENVIRONMENTS: tuple[str, ...] = _project_environments()
# The macros that say how legacy text and values are read (the environment, the cache type,
# a symbol, a group's name, a member list and its elements, a sector label): plain Jinja, so
# the harness renders the very macros the models call.  One module, in this order, so that a
# rule may call another (json_helpers' json_text_at).
RULE_FILES = tuple(
    PROJECT_ROOT / "macros" / "sql_helpers" / name
    for name in ("normalisation.sql", "json_helpers.sql", "legacy_reading.sql")
)
NORMALISATION_MACROS = RULE_FILES[0]


@functools.cache
def _rule_module() -> Any:
    import jinja2

    template = "\n".join(path.read_text(encoding="utf-8") for path in RULE_FILES)
    # SQL, not HTML: escaping would turn the quotes into entities (dbt does not escape either)
    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return jinja.from_string(template).module


@functools.cache
def _rendered_rule(macro: str, arity: int) -> str:
    """What the project's macro ``macro`` (RULE_FILES) renders to over the placeholders
    {a0}, {a1}, …: the same SQL dbt puts in the models, its own braces escaped for
    sql.SQL.format.  A rule holds no percent sign (a statement with parameters would read it
    as one): tests/test_environment_rule.py checks every rule renders without one."""
    markers = [f"\x00{index}\x00" for index in range(arity)]
    text = str(getattr(_rule_module(), macro)(*markers)).strip()
    text = text.replace("{", "{{").replace("}", "}}")
    for index, marker in enumerate(markers):
        text = text.replace(marker, f"{{a{index}}}")
    return text


def rule(macro: str, *expressions: sql.Composable) -> sql.Composed:
    """SQL for the project's macro ``macro`` (RULE_FILES) applied to ``expressions``."""
    return sql.SQL(_rendered_rule(macro, len(expressions))).format(  # type: ignore[arg-type]
        **{f"a{index}": expression for index, expression in enumerate(expressions)}
    )


def read_as(macro: str, expression: sql.Composable) -> sql.Composed:
    """SQL for ``expression`` read by the project's macro ``macro`` of NORMALISATION_MACROS
    (normalised_environment, normalised_cache_type, folded_symbol)."""
    return rule(macro, expression)


TYPE_MAPPINGS = PROJECT_ROOT / "seeds" / "cache_type_mappings.csv"


@functools.cache
def _type_mapping_rows() -> tuple[tuple[str, ...], ...]:
    import csv

    with TYPE_MAPPINGS.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader))
        return (header, *(tuple(row) for row in reader if row))


def type_mappings() -> sql.Composed:
    """The seed cache_type_mappings (the one mapping of cache types to groups, read by the
    models through ref) as a subquery with its columns, for the harness's statements."""
    header, *rows = _type_mapping_rows()
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(value) for value in row))
        for row in rows
    )
    return sql.SQL("(select * from (values {}) as seed ({}))").format(
        values, sql.SQL(", ").join(sql.Identifier(name) for name in header)
    )


def environment_of(column: sql.Composable) -> sql.Composed:
    """SQL for the environment a cache_entries row belongs to, given its environment column
    (e.g. ``sql.Identifier("environment")``): the models' rule, macro normalised_environment,
    so a backup, a restore or a check selects exactly the rows a build counts (E'prod\\t' is
    PROD to both)."""
    return read_as("normalised_environment", column)


# each environment is migrated by the dbt target of its name in lower case
TARGETS: Mapping[str, str] = {environment.lower(): environment for environment in ENVIRONMENTS}
# as an SQL list, for the checks that mirror the contract's CHECK
ENVIRONMENTS_SQL = "(" + ", ".join(f"'{name}'" for name in ENVIRONMENTS) + ")"
# Session advisory lock of a whole run of one environment (validation/dbt.py), and the
# transaction lock the marts' hooks and the operations take around writes to the two tables.
RUN_LOCK_CLASS = "sprint59_migration.run"
MARTS_LOCK = "sprint59_migration.marts"

PROJECT = "sprint59_migration"
NODES = {
    "groups": f"model.{PROJECT}.definition_groups",
    "memberships": f"model.{PROJECT}.group_memberships",
    "exceptions": f"model.{PROJECT}.migration_exceptions",
    "reconciliation": f"model.{PROJECT}.cache_entry_reconciliation",
    "readiness": f"model.{PROJECT}.cache_retirement_readiness",
}
CACHE_SOURCE = f"source.{PROJECT}.legacy.cache_entries"


def environment_for(target: str) -> str:
    """The environment (ENVIRONMENTS) a dbt target name migrates."""
    try:
        return TARGETS[target]
    except KeyError:
        raise UserFacingError(
            f"Unknown target {target!r}: use one of {', '.join(TARGETS)}."
        ) from None


def parse_targets(text: str) -> list[str]:
    """'default,test' → ['default', 'test'] (each known, none twice)."""
    targets = [t.strip() for t in text.split(",") if t.strip()]
    if not targets:
        raise UserFacingError(f"No target in {text!r}; use one or more of {', '.join(TARGETS)}.")
    for target in targets:
        environment_for(target)
    return list(dict.fromkeys(targets))


def artifacts_root() -> Path:
    """dbt's target directory: DBT_TARGET_PATH (dbt's own variable) when set, else target/."""
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else PROJECT_ROOT / "target"


def harness_target_path(target: str) -> Path:
    """Where the harness has dbt write one target's artifacts (<target dir>/<target>/), so
    validating one environment never reads another environment's manifest."""
    return artifacts_root() / target


@dataclass(frozen=True)
class Relation:
    """A table or view: schema and name (the database is the connection's)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Tables:
    """Where one target's relations are, and how that was decided."""

    target: str
    groups: Relation
    memberships: Relation
    exceptions: Relation
    reconciliation: Relation
    readiness: Relation
    cache: Relation
    found_by: str  # e.g. "the newest build of PROD recorded in mig.migration_run_log (…)"
    manifest: Path | None = None  # the manifest the operator named (validate --manifest)
    skipped: tuple[str, ...] = ()  # other builds or run logs looked at, and why not used
    build: Build | None = None  # the build the run log records for these tables

    def looked_in(self) -> str:
        """For error messages: ' (looked in …, from …; skipped …)'."""
        text = f" (looked in schema {self.groups.schema}; {self.found_by}"
        if self.skipped:
            text += "; skipped " + "; ".join(self.skipped)
        return text + ")"


@dataclass(frozen=True)
class Build:
    """A build of one environment, as the run log of the schema it built in records it."""

    schema: str  # the run log's schema: that of the two tables
    invocation_id: str
    started_at: datetime  # UTC
    source_schema: str | None  # None: logged by a release that did not record it
    operations_schema: str | None

    def describe(self) -> str:
        return (
            f"dbt invocation {self.invocation_id[:8]} of "
            f"{self.started_at:%Y-%m-%d %H:%M:%S} UTC, in {self.schema}.{RUN_LOG}"
        )


def _relation(entry: Mapping[str, Any]) -> Relation:
    name = entry.get("alias") or entry.get("identifier") or entry["name"]
    return Relation(str(entry["schema"]), str(name))


def read_manifest(path: Path, target: str) -> tuple[dict[str, Relation], str, str]:
    """The relations a manifest names, the database it was built against and the environment
    it was built for; UserFacingError saying what is wrong with it otherwise."""
    build_first = f"run dbt build --target {target} first"
    if not path.is_file():
        raise UserFacingError(f"No dbt manifest at {path}; {build_first}.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        nodes, sources = manifest["nodes"], manifest["sources"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserFacingError(f"{path} is not a dbt manifest ({exc}); {build_first}.") from exc
    found: dict[str, Relation] = {}
    for key in ("groups", "memberships", "exceptions", "cache"):
        unique_id = CACHE_SOURCE if key == "cache" else NODES[key]
        entry = (sources if key == "cache" else nodes).get(unique_id)
        if entry is None:
            raise UserFacingError(f"{path} has no {unique_id}; {build_first}.")
        found[key] = _relation(entry)
    database = str(nodes[NODES["groups"]]["database"])
    # Per-environment schemas end in _<environment> (macros/generate_schema_name.sql).
    built_for = [
        e for e in ENVIRONMENTS if found["exceptions"].schema.endswith(f"_{e.lower()}")
    ] or [environment_for(target)]
    ops = f"{found['groups'].schema}_ops_{built_for[0].lower()}"
    for key, name in (("reconciliation", "cache_entry_reconciliation"),
                      ("readiness", "cache_retirement_readiness")):  # fmt: skip
        entry = nodes.get(NODES[key])
        found[key] = _relation(entry) if entry else Relation(ops, name)
    return found, database, built_for[0]


RUN_LOG = "migration_run_log"  # macros/run_state/run_log.sql, beside the two tables

RUN_LOGS_SQL = """
select
    n.nspname,
    has_schema_privilege(n.oid, 'USAGE') and has_table_privilege(c.oid, 'SELECT'),
    exists (
        select from pg_attribute as a
        where a.attrelid = c.oid and a.attname = 'operations_schema' and not a.attisdropped
    )
from pg_class as c
inner join pg_namespace as n on c.relnamespace = n.oid
where c.relname = %s and c.relkind in ('r', 'p')
order by n.nspname
"""
NEWEST_BUILD_SQL = """
select invocation_id, run_started_at, {locations}
from {run_log}
where environment = %s
order by run_started_at desc
limit 1
"""


def recorded_builds(
    conn: psycopg.Connection[Any], environment: str
) -> tuple[list[Build], list[str]]:
    """The newest build of ``environment`` in every run log of the database that this role
    can read, and the schemas of the run logs it cannot (the catalog shows them to all)."""
    builds: list[Build] = []
    unreadable: list[str] = []
    for schema, readable, located in conn.execute(RUN_LOGS_SQL, (RUN_LOG,)).fetchall():
        if not readable:
            unreadable.append(str(schema))
            continue
        locations = (
            sql.SQL("source_schema, operations_schema")
            if located
            else sql.SQL("null::text, null::text")  # a run log of an earlier release
        )
        query = sql.SQL(NEWEST_BUILD_SQL).format(
            locations=locations, run_log=sql.Identifier(schema, RUN_LOG)
        )
        row = conn.execute(query, (environment,)).fetchone()
        if row is not None:
            invocation, started, source, operations = row
            builds.append(
                Build(str(schema), str(invocation), started.replace(tzinfo=UTC), source, operations)
            )
    return builds, unreadable


def _unreadable_run_logs(conn: psycopg.Connection[Any], schemas: list[str]) -> PermissionProblem:
    role = str(conn.execute("select current_user").fetchone()[0])  # type: ignore[index]
    logs = ", ".join(f"{schema}.{RUN_LOG}" for schema in schemas)
    return PermissionProblem(
        f"Role {role} may not read {logs} (it needs USAGE on the schema and SELECT on the "
        "table), so the command cannot tell where the last build put the tables; ask the "
        "migration's owner to build with DBT_READER_ROLE naming your role (README, 'Use your "
        "own PostgreSQL'), or name the schemas with --schema and --source-schema."
    )


def locate(
    conn: psycopg.Connection[Any],
    target: str,
    *,
    schema: str | None = None,
    source_schema: str | None = None,
    manifest: Path | None = None,
) -> Tables:
    """Where ``target``'s tables are in the database ``conn`` is connected to (see the
    module's docstring)."""
    environment = environment_for(target)
    if manifest is not None:
        return _from_manifest(conn, target, manifest, source_schema)
    named, why = schema, "schema from --schema"
    if not named and os.environ.get("DBT_SCHEMA"):
        named, why = os.environ["DBT_SCHEMA"], "schema from DBT_SCHEMA"
    builds, unreadable = recorded_builds(conn, environment)
    builds.sort(key=lambda b: b.started_at, reverse=True)
    if named:
        build = next((b for b in builds if b.schema == named), None)
        if build is not None:
            why += f", where the run log records the build of {environment}: {build.describe()}"
        elif named in unreadable:
            why += f" (this role may not read {named}.{RUN_LOG})"
        else:
            why += f"; no build of {environment} recorded in {named}.{RUN_LOG}"
        skipped = tuple(f"a build in {b.schema} ({b.describe()})" for b in builds if b is not build)
    elif builds:
        build, named = builds[0], builds[0].schema
        why = f"the newest build of {environment} in this database: {build.describe()}"
        skipped = tuple(f"an older build in {b.schema} ({b.describe()})" for b in builds[1:])
    elif unreadable:
        raise _unreadable_run_logs(conn, unreadable)
    else:
        build, named, skipped = None, "public", ()
        why = f"no build of {environment} recorded in this database and no DBT_SCHEMA: the default"
    if source_schema:
        cache_schema = source_schema
    elif build is not None and build.source_schema:
        cache_schema = build.source_schema
    else:
        cache_schema = os.environ.get("DBT_SOURCE_SCHEMA") or "public"
    tables = _from_schema(target, named, cache_schema, why)
    if build is not None and build.operations_schema:
        tables = _with_operations_schema(tables, build.operations_schema)
    return replace(tables, skipped=skipped, build=build)


def _with_operations_schema(tables: Tables, operations: str) -> Tables:
    return replace(
        tables,
        exceptions=Relation(operations, tables.exceptions.name),
        reconciliation=Relation(operations, tables.reconciliation.name),
        readiness=Relation(operations, tables.readiness.name),
    )


def _from_manifest(
    conn: psycopg.Connection[Any], target: str, manifest: Path, source_schema: str | None
) -> Tables:
    """The relations of a manifest the operator named, refused when it is of another
    environment or database."""
    environment = environment_for(target)
    database = str(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]
    relations, built_db, built_for = read_manifest(manifest, target)
    if built_for != environment:
        raise UserFacingError(
            f"{manifest} comes from a build of the {built_for} environment, not "
            f"{environment}; run dbt build --target {target} first (or pass that "
            "build's manifest)."
        )
    if built_db != database:
        raise UserFacingError(
            f"{manifest} was built against database {built_db!r} but the connection "
            f"goes to {database!r}; run dbt build --target {target} with the same PG* "
            "settings, or point PGDATABASE at the built database."
        )
    cache = relations["cache"]
    if source_schema:
        cache = Relation(source_schema, cache.name)
    written = datetime.fromtimestamp(manifest.stat().st_mtime, UTC)
    return Tables(
        target, relations["groups"], relations["memberships"], relations["exceptions"],
        relations["reconciliation"], relations["readiness"], cache,
        f"schemas from the dbt manifest {manifest} (written {written:%Y-%m-%d %H:%M:%S} UTC)",
        manifest,
    )  # fmt: skip


def _from_schema(target: str, schema: str, source_schema: str, why: str) -> Tables:
    suffix = environment_for(target).lower()
    return Tables(
        target=target,
        groups=Relation(schema, "definition_groups"),
        memberships=Relation(schema, "group_memberships"),
        exceptions=Relation(f"{schema}_ops_{suffix}", "migration_exceptions"),
        reconciliation=Relation(f"{schema}_ops_{suffix}", "cache_entry_reconciliation"),
        readiness=Relation(f"{schema}_ops_{suffix}", "cache_retirement_readiness"),
        cache=Relation(source_schema, "cache_entries"),
        found_by=why,
    )
