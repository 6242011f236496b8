"""One place that knows the targets, their environments, the run lock and where a target's
tables are: every command of the harness asks here, so they all find the same tables.

Where the tables of a target are, in this order:

1. ``--schema`` (and ``--source-schema``) when the operator names them;
2. the newest dbt manifest of that target built against the same database: the harness's
   ``<target dir>/<target>/manifest.json`` or plain dbt's ``<target dir>/manifest.json``,
   whichever was written last (``<target dir>`` is ``$DBT_TARGET_PATH`` or ``target/``);
   a manifest of another environment or another database is skipped, and said so;
3. the variables dbt itself uses: ``DBT_SCHEMA`` (default ``public``) for the two tables,
   ``<schema>_ops_<env>`` beside it for the operations marts (the exceptions, the
   reconciliation and the retirement readiness), and ``public`` for ``cache_entries``.

Each answer carries where it came from, so an error can say where the command looked, and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from validation.connection import PROJECT_ROOT
from validation.errors import UserFacingError


def _project_environments() -> tuple[str, ...]:
    """The environments, as dbt_project.yml's var ``environments`` lists them (the one place
    they are defined; the models read the same var)."""
    import yaml

    project = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    return tuple(str(name) for name in project["vars"]["environments"])


ENVIRONMENTS: tuple[str, ...] = _project_environments()
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
    found_by: str  # e.g. "the manifest target/prod/manifest.json (written …)"
    manifest: Path | None = None
    skipped: tuple[str, ...] = ()  # manifests looked at and why they were not used

    def looked_in(self) -> str:
        """For error messages: ' (looked in …, from …; skipped …)'."""
        text = f" (looked in schema {self.groups.schema}; {self.found_by}"
        if self.skipped:
            text += "; skipped " + "; ".join(self.skipped)
        return text + ")"


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


def _written(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def manifest_candidates(target: str) -> list[Path]:
    """The harness's manifest of the target and plain dbt's, newest first."""
    found = [p for p in (harness_target_path(target) / "manifest.json",
                         artifacts_root() / "manifest.json") if p.is_file()]  # fmt: skip
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def locate(
    target: str,
    database: str,
    *,
    schema: str | None = None,
    source_schema: str | None = None,
    manifest: Path | None = None,
) -> Tables:
    """Where ``target``'s tables are in ``database`` (see the module's docstring)."""
    environment = environment_for(target)
    if schema:
        return _from_schema(target, schema, source_schema or "public", "schema from --schema")
    skipped: list[str] = []
    for path in [manifest] if manifest else manifest_candidates(target):
        relations, built_db, built_for = read_manifest(path, target)
        if built_for != environment:
            if manifest:
                raise UserFacingError(
                    f"{manifest} comes from a build of the {built_for} environment, not "
                    f"{environment}; run dbt build --target {target} first (or pass that "
                    "build's manifest)."
                )
            skipped.append(f"{_relative(path)} (a build of {built_for})")
            continue
        if built_db != database:
            if manifest:
                raise UserFacingError(
                    f"{manifest} was built against database {built_db!r} but the connection "
                    f"goes to {database!r}; run dbt build --target {target} with the same PG* "
                    "settings, or point PGDATABASE at the built database."
                )
            skipped.append(f"{_relative(path)} (built against database {built_db})")
            continue
        cache = relations["cache"]
        if source_schema:
            cache = Relation(source_schema, cache.name)
        return Tables(
            target, relations["groups"], relations["memberships"], relations["exceptions"],
            relations["reconciliation"], relations["readiness"], cache,
            f"schemas from the dbt manifest {_relative(path)} (written {_written(path)})",
            path, tuple(skipped),
        )  # fmt: skip
    configured = os.environ.get("DBT_SCHEMA")
    why = (
        "schema from DBT_SCHEMA"
        if configured
        else "no manifest of this build and no DBT_SCHEMA: the default schema"
    )
    tables = _from_schema(target, configured or "public", source_schema or "public", why)
    return replace(tables, skipped=tuple(skipped))


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
