"""The Great Expectations suite of the migration: counts, integrity, legacy parity, query timings.

``run_validation`` reads the relation names from dbt's manifest, times the spec's analyst queries
and the suite's own queries with psycopg, then runs one checkpoint in an ephemeral GX context over
four suites (counts, definition_groups, group_memberships, query_timings) and writes Data Docs.
What each environment must hold comes from ``validation/expectations/<target>.yml``.

``import great_expectations`` is slow (2-4 s), so it happens inside ``run_validation`` only, and its
cost is reported apart from the checkpoint's run time.

This module holds the suite itself: the expectations it declares, the checkpoint that runs them
and ``run_validation``.  Beside it: the expectations files' loader (``validate_expectations.py``),
the suite's SQL and the query timings (``validate_queries.py``) and the result with its printed
and JSON forms (``validate_report.py``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from validation import targets
from validation.connection import connect, describe
from validation.errors import UserFacingError
from validation.privileges import require_select
from validation.targets import environment_for
from validation.timings import load_average
from validation.validate_expectations import (
    ANALYST_QUERIES,
    COUNT_LABELS,
    EXPECTATIONS_DIR,
    QUERY_LABELS,
    VALIDATION_TOTAL,
    ExpectationsFile,
    default_expectations_path,
    load_expectations,
)
from validation.validate_queries import (
    ANALYST_TABLE_QUERIES,
    ANALYST_TABLES,
    ROUND_TRIP_QUERIES,
    SUITE_QUERIES,
    Relations,
    check_relations_exist,
    measure_queries,
    other_writers,
    relations_of,
    statement_for_gx,
    timings_frame,
)
from validation.validate_report import (
    CheckResult,
    ValidationReport,
    format_report,
    report_as_dict,
)

__all__ = [
    "CACHE_SOURCE",
    "EXPECTATIONS_DIR",
    "MANIFEST_NODES",
    "SUITE_QUERIES",
    "CheckResult",
    "ValidationReport",
    "connection_url",
    "format_report",
    "load_expectations",
    "report_as_dict",
    "run_name",
    "run_validation",
]

GROUP_TYPES = ("ETF", "THEME", "SECTOR", "SEGMENT", "CUSTOM")
ENVIRONMENTS = targets.ENVIRONMENTS
MANIFEST_NODES = targets.NODES
CACHE_SOURCE = targets.CACHE_SOURCE
TIMINGS_CSV = "query_timings.csv"
HISTORY_DIR = "history"  # the GX file context whose results the Data Docs index lists
LOCK_FILE = ".validate.lock"  # held while a run writes the directory (docs_dir_lock)
DOCS_SITE = "local"
# What the query timings do to the result: gate (a missed budget fails, exit 3 when nothing
# else failed), report (measured and shown, never failing), off (not measured).
TIMING_MODES = ("gate", "report", "off")
SHOWN_ROWS = 5


# --- Great Expectations -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    suite: str
    key: str
    label: str
    expected: str
    expectation: Any  # a great_expectations Expectation


def connection_url(settings: Mapping[str, str]) -> str:
    """A SQLAlchemy URL (psycopg 3) from PG* settings; a PGHOST directory means a socket."""
    from sqlalchemy.engine import URL

    query = {
        key: settings[name]
        for name, key in (("PGHOST", "host"), ("PGPORT", "port"))
        if settings.get(name)
    }
    url = URL.create(
        "postgresql+psycopg",
        username=settings.get("PGUSER") or None,
        password=settings.get("PGPASSWORD") or None,
        database=settings.get("PGDATABASE") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def gx_name(name: str) -> str:
    """A schema or table name for a GX table asset, kept as it is: GX lower-cases a plain
    name (a schema "Mixed_Case" became mixed_case), and a name in double quotes it quotes once
    more.  SQLAlchemy's quoted_name is one that stays itself when lower-cased, and is quoted."""
    from sqlalchemy.sql import quoted_name

    return quoted_name(name, quote=True)


def _declare_checks(
    gx: Any, spec: ExpectationsFile, gx_queries: Mapping[str, str], *, timed: bool = True
) -> list[_Check]:
    gxe = gx.expectations
    column = gxe.row_conditions.Column
    checks: list[_Check] = []

    def add(suite: str, key: str, label: str, expected: str, expectation: Any) -> None:
        expectation.meta = {"check": key}
        checks.append(_Check(suite, key, label, expected, expectation))

    def rows(key: str, description: str) -> Any:
        return gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=gx_queries[key], description=description
        )

    for key, label in COUNT_LABELS.items():
        band = spec.counts[key]
        add(
            "counts",
            key,
            label,
            band.text,
            gxe.ExpectColumnMaxToBeBetween(
                column=key, min_value=band.minimum, max_value=band.maximum
            ),
        )
    type_set, environment_set = ", ".join(GROUP_TYPES), ", ".join(ENVIRONMENTS)
    add(
        "definition_groups",
        "type_in_set",
        "type in its set",
        type_set,
        gxe.ExpectColumnValuesToBeInSet(column="type", value_set=list(GROUP_TYPES)),
    )
    add(
        "definition_groups",
        "type_not_null",
        "type not null",
        "no NULL",
        gxe.ExpectColumnValuesToNotBeNull(column="type"),
    )
    add(
        "definition_groups",
        "environment_in_set",
        "environment in its set",
        environment_set,
        gxe.ExpectColumnValuesToBeInSet(column="environment", value_set=list(ENVIRONMENTS)),
    )
    add(
        "definition_groups",
        "environment_not_null",
        "environment not null",
        "no NULL",
        gxe.ExpectColumnValuesToNotBeNull(column="environment"),
    )
    add(
        "definition_groups",
        "duplicate_groups",
        "unique (name, type, environment)",
        "0 duplicates",
        rows("duplicate_groups", "No two groups share (name, type, environment)."),
    )
    add(
        "definition_groups",
        "empty_groups",
        "ETF and THEME groups without members",
        "none",
        rows(
            "empty_groups",
            f"Every ETF and THEME group of {spec.environment} has at least one membership.",
        ),
    )
    add(
        "group_memberships",
        "orphan_memberships",
        "orphan memberships",
        "none",
        rows("orphan_memberships", "Every membership's group_id names a definition_groups row."),
    )
    add(
        "group_memberships",
        "duplicate_memberships",
        "unique (group_id, symbol)",
        "0 duplicates",
        rows("duplicate_memberships", "No symbol appears twice in one group."),
    )
    add(
        "group_memberships",
        "weight_range",
        "weights in [0, 1] where present",
        "0 out of range",
        gxe.ExpectColumnValuesToBeBetween(column="weight", min_value=0, max_value=1),
    )
    add(
        "group_memberships",
        "legacy_parity",
        "ETF/THEME members = legacy lists",
        "0 mismatches",
        rows(
            "legacy_parity",
            f"For every ETF and theme of {spec.environment}, the member set equals the legacy "
            "JSON array (trimmed, upper-cased) minus the elements migration_exceptions "
            "records as errors.",
        ),
    )
    for mart in ANALYST_TABLES:
        add(
            mart,
            f"{mart}_match",
            f"{mart}: its rows = the two tables' rows",
            "0 differences",
            rows(
                f"{mart}_match",
                f"Every row of {mart} for {spec.environment} equals what the two tables "
                "(the migration's rows, its ledger) give, and no other row is there: an empty, "
                "stale or partial analyst table fails.",
            ),
        )
    add(
        "compat",
        "compat_round_trip",
        "compat: values = legacy values",
        "0 mismatches",
        rows(
            "compat_round_trip",
            f"Every entry of {spec.environment} the migration read is served by the "
            "compatibility relation (<schema>_compat_<env>.cache_entries): its value without "
            "its member lists equals the legacy value's, its members in order equal the legacy "
            "elements minus those migration_exceptions records as errors; every entry left out "
            "as a whole is listed (docs/design.md §13).",
        ),
    )
    for query in (*ANALYST_QUERIES, VALIDATION_TOTAL) if timed else ():
        budget = spec.budgets_ms[query]
        add(
            "query_timings",
            f"p95_{query}",
            f"p95 {QUERY_LABELS[query]}",
            f"≤ {budget:g} ms",
            gxe.ExpectColumnMaxToBeBetween(
                column="p95_ms", max_value=budget, row_condition=column("query") == query
            ),
        )
    return checks


def _exception_message(exception_info: Any) -> str:
    """The first exception message anywhere in GX's exception_info (its shape varies)."""
    if isinstance(exception_info, Mapping):
        if exception_info.get("raised_exception") and exception_info.get("exception_message"):
            return str(exception_info["exception_message"])
        for value in exception_info.values():
            found = _exception_message(value)
            if found:
                return found
    return ""


def _format_row(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items())


def _describe_result(check: _Check, result: Any) -> CheckResult:
    outcome = result.result or {}
    kind = result.expectation_config.type
    observed, details = "", ""
    if kind == "unexpected_rows_expectation":
        count = outcome.get("observed_value")
        found = (outcome.get("details") or {}).get("unexpected_rows") or []
        observed = "" if count is None else f"{count:,}"
        if found:
            shown = "; ".join(_format_row(row) for row in found[:SHOWN_ROWS])
            more = f" (and {count - SHOWN_ROWS:,} more)" if count and count > SHOWN_ROWS else ""
            details = f"{count:,} row(s): {shown}{more}"
    elif kind == "expect_column_max_to_be_between":
        value = outcome.get("observed_value")
        if value is None:
            observed = "none"
        elif check.suite == "query_timings":
            observed = f"{float(value):.2f} ms"
        else:
            observed = f"{int(value):,}"
    else:
        unexpected = outcome.get("unexpected_count")
        total = outcome.get("element_count")
        if unexpected is not None:
            observed = f"{unexpected:,} of {total:,}" if total is not None else f"{unexpected:,}"
        if unexpected:
            sample = outcome.get("partial_unexpected_list") or []
            details = "unexpected values: " + ", ".join(repr(v) for v in sample[:SHOWN_ROWS])
    error = _exception_message(result.exception_info).strip().split("\n", 1)[0][:300]
    if error:
        observed = observed or "error"
        details = f"{details}; {error}" if details else error
    message = ""
    if not result.success:
        message = f"{check.label}: observed {observed or 'nothing'}, expected {check.expected}"
        if details:
            message += f" — {details}"
    return CheckResult(
        suite=check.suite,
        check=check.key,
        label=check.label,
        observed=observed,
        expected=check.expected,
        success=bool(result.success),
        message=message,
    )


def _collect(checks: list[_Check], checkpoint_result: Any) -> tuple[CheckResult, ...]:
    """Results back in declaration order (GX returns them in its own order)."""
    by_key: dict[str, Any] = {}
    for suite_result in checkpoint_result.run_results.values():
        for result in suite_result.results:
            key = (result.expectation_config.meta or {}).get("check")
            if key:
                by_key[key] = result
    collected = []
    for check in checks:
        result = by_key.get(check.key)
        if result is None:
            collected.append(
                CheckResult(
                    check.suite, check.key, check.label, "not run", check.expected, False,
                    f"{check.label}: Great Expectations returned no result",
                )
            )  # fmt: skip
        else:
            collected.append(_describe_result(check, result))
    return tuple(collected)


def _run_checkpoint(
    gx: Any,
    *,
    target: str,
    settings: Mapping[str, str],
    relations: Relations,
    checks: list[_Check],
    gx_queries: Mapping[str, str],
    timings_csv: Path,
    docs_dir: Path,
    run_name: str,
) -> tuple[Any, float, float]:
    """Context, sources, suites and one checkpoint; returns (result, setup s, run s).

    The context is a file context kept beside the Data Docs (``<docs>/history``), so its
    validation results accumulate: the Data Docs index lists every run of the target, each
    under ``run_name``.  Sources, suites and definitions are replaced on every run."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    started = time.perf_counter()
    url_variable = "SPRINT59_VALIDATION_PG_URL"
    _forget_previous_definitions(docs_dir / HISTORY_DIR)
    context = gx.get_context(
        mode="file",
        project_root_dir=str(docs_dir / HISTORY_DIR),
        runtime_environment={url_variable: connection_url(settings)},
    )
    context.variables.progress_bars = ProgressBarsConfig(globally=sys.stdout.isatty())
    if DOCS_SITE not in context.get_site_names():
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    for name in ("migration", "timings"):
        if name in context.data_sources.all():
            context.data_sources.delete(name)
    try:
        postgres = context.data_sources.add_postgres(
            "migration", connection_string="${" + url_variable + "}"
        )
    except Exception as exc:
        raise UserFacingError(
            f"Great Expectations cannot connect to PostgreSQL at {describe(settings)} "
            f"({type(exc).__name__}); check the PG* settings."
        ) from exc
    batches = {
        "counts": postgres.add_query_asset(
            "environment_counts", query=gx_queries["environment_counts"]
        ),
        "definition_groups": postgres.add_table_asset(
            "definition_groups",
            table_name=gx_name(relations.groups.name),
            schema_name=gx_name(relations.groups.schema),
        ),
        "group_memberships": postgres.add_table_asset(
            "group_memberships",
            table_name=gx_name(relations.memberships.name),
            schema_name=gx_name(relations.memberships.schema),
        ),
        **{
            mart: postgres.add_table_asset(
                mart,
                table_name=gx_name(getattr(relations, mart).name),
                schema_name=gx_name(getattr(relations, mart).schema),
            )
            for mart in ANALYST_TABLES
        },
        "compat": postgres.add_table_asset(
            "compat",
            table_name=gx_name(relations.compat.name),
            schema_name=gx_name(relations.compat.schema),
        ),
        "query_timings": context.data_sources.add_pandas("timings").add_csv_asset(
            "query_timings", filepath_or_buffer=timings_csv
        ),
    }
    definitions = []
    for suite_key, asset in batches.items():
        if not any(check.suite == suite_key for check in checks):
            continue  # the timings, when they are off
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=f"sprint59_{target}.{suite_key}")
        )
        for check in checks:
            if check.suite == suite_key:
                suite.add_expectation(check.expectation)
        batch = (
            asset.add_batch_definition_whole_dataframe("all")
            if suite_key == "query_timings"
            else asset.add_batch_definition_whole_table("all")
        )
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"{target}.{suite_key}", data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"sprint59_{target}",
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "COMPLETE"},
        )
    )
    ran = time.perf_counter()
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)))
    return result, ran - started, time.perf_counter() - ran


def run_validation(
    settings: Mapping[str, str],
    target: str,
    *,
    docs_dir: Path,
    manifest_path: Path | None = None,
    schema: str | None = None,
    source_schema: str | None = None,
    expectations_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
    timings_mode: str = "gate",
) -> ValidationReport:
    """Validate one environment's migrated tables; raise UserFacingError when it cannot run.

    The tables are where validation/targets.py finds them (``schema`` / ``source_schema``:
    --schema / --source-schema).  ``timings_mode``: gate (budgets fail the result), report
    (shown only) or off."""
    if timings_mode not in TIMING_MODES:
        raise UserFacingError(
            f"Unknown timings mode {timings_mode!r}; use one of {', '.join(TIMING_MODES)}."
        )
    say = progress or (lambda _message: None)
    environment = environment_for(target)
    spec = load_expectations(expectations_path or default_expectations_path(target), environment)
    if manifest_path is not None:
        targets.read_manifest(manifest_path, target)  # a broken manifest says so before connecting

    with connect(settings, autocommit=True) as conn:
        database = str(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]
        tables = targets.locate(
            conn, target, schema=schema, source_schema=source_schema, manifest=manifest_path
        )
        say(f"tables: {tables.found_by}; cache_entries in {tables.cache.schema}")
        relations = relations_of(tables, database)
        require_select(
            conn,
            [relations.groups, relations.memberships, relations.exceptions, relations.cache,
             relations.ledger_groups, relations.ledger_memberships,
             *(getattr(relations, name) for name in ANALYST_TABLES), relations.compat],
            legacy=relations.cache,
        )  # fmt: skip
        check_relations_exist(conn, relations, target, tables)
        others = other_writers(conn, relations, environment)
        server = f"PostgreSQL {conn.info.parameter_status('server_version') or '?'}"
        started = time.perf_counter()
        load = load_average()
        timings = [] if timings_mode == "off" else measure_queries(conn, relations, spec, say)
        timing_seconds = time.perf_counter() - started
        gx_queries = {
            q.name: statement_for_gx(q, relations, environment, conn)
            for q in (*SUITE_QUERIES, *ANALYST_TABLE_QUERIES, *ROUND_TRIP_QUERIES)
        }
    frame = timings_frame(timings, spec)
    docs_dir = docs_dir.resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    timings_csv = docs_dir / TIMINGS_CSV

    say("importing great_expectations")
    gx_was_loaded = "great_expectations" in sys.modules
    started = time.perf_counter()
    import great_expectations as gx

    import_seconds = time.perf_counter() - started
    with warnings.catch_warnings(), docs_dir_lock(docs_dir, say):
        frame.to_csv(timings_csv, index=False)
        warnings.simplefilter("ignore")
        checks = _declare_checks(gx, spec, gx_queries, timed=timings_mode != "off")
        suites = len({check.suite for check in checks})
        say(f"running the checkpoint ({len(checks)} expectations, {suites} suites)")
        result, setup_seconds, checkpoint_seconds = _run_checkpoint(
            gx,
            target=target,
            settings=settings,
            relations=relations,
            checks=checks,
            gx_queries=gx_queries,
            timings_csv=timings_csv,
            docs_dir=docs_dir,
            run_name=run_name(target, tables),
        )
    return ValidationReport(
        target=target,
        environment=environment,
        expectations_path=spec.path,
        server=server,
        checks=_collect(checks, result),
        timings=frame,
        import_seconds=import_seconds,
        setup_seconds=setup_seconds,
        timing_seconds=timing_seconds,
        checkpoint_seconds=checkpoint_seconds,
        checkpoint_budget_seconds=spec.checkpoint_seconds,
        docs_index=docs_dir / "index.html",
        checkpoint_success=bool(result.success),
        gx_was_loaded=gx_was_loaded,
        timings_mode=timings_mode,
        load_average=load,
        other_writers=others,
    )


@contextmanager
def docs_dir_lock(docs_dir: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One validation at a time writes a Data Docs directory: its GX file context and timings
    CSV are rewritten by every run, and two runs at once (two CI jobs validating the same
    target from one checkout) leave GX a suite "changed since it was last saved".  The next
    one waits for the lock, and says so; the lock goes with the process."""
    import fcntl

    with (docs_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another validation writing {docs_dir} to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _forget_previous_definitions(project_root: Path) -> None:
    """The history keeps validation results, not definitions: the previous run's checkpoint
    and validation definitions name relations, files and suites that may have changed
    (another schema, a temporary CSV, timings off), and GX cannot load one whose parts are
    gone, so they are removed before the context opens (sources are replaced after)."""
    import shutil

    for folder in ("checkpoints", "validation_definitions"):
        shutil.rmtree(project_root / "gx" / folder, ignore_errors=True)


def run_name(target: str, tables: targets.Tables) -> str:
    """How a run is listed in Data Docs: the target, when, and the dbt build it checked."""
    build = "none recorded"
    if tables.build is not None:
        started = tables.build.started_at.strftime("%Y-%m-%dT%H:%M:%S")
        build = f"dbt invocation {tables.build.invocation_id[:8]} of {started}"
    elif tables.manifest is not None:
        try:
            metadata = json.loads(tables.manifest.read_text(encoding="utf-8"))["metadata"]
            build = f"dbt invocation {str(metadata['invocation_id'])[:8]}"
            build += f" of {str(metadata.get('generated_at', ''))[:19]}"
        except (OSError, ValueError, KeyError, TypeError):
            build = "an unreadable manifest"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{target} {stamp}, build: {build}"
