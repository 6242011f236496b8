"""``python -m validation bench``: build cost, incremental cost and query latency, measured.

For each scale of the sample the benchmark creates its own database (``<prefix>_s<scale>``) on
the server the PG* settings reach, loads the legacy ``cache_entries`` into schema ``legacy``
and measures, in that one run:

- the builds, each a dbt child process with its own target and log paths (the project's
  ``target/`` is never touched): the full build (``dbt seed`` + ``dbt run``, and ``dbt build``
  with the tests, each from an empty database), a no-change incremental ``dbt run``, an
  incremental ``dbt run`` after 1 % of the entries changed (each repeated, the median
  reported with every run beside it), and the floor: one hand-written SQL script doing the
  same transform in a single transaction;
- the latency of the analysts' questions, warm and client-side (psycopg, parameters): the
  spec's three statements on the tables as the models leave them and on a naive copy that has
  only the prototype's indexes, their legacy JSONB equivalents on ``cache_entries``, and the
  analyst models;
- the size of every relation, and the peak memory of every dbt process (the server's memory
  is out of reach of a client: it is not measured);
- at the largest scale of the run, the membership history: a series of 1 %-changed runs, the
  history models' share of each run's database time, and the latency of the as-of questions
  (``bench_history.py``).

The results go to ``benchmarks.json``, ``benchmarks.md`` and ``benchmark_latency.png`` in
``out_dir``, with the issue's targets marked met or not met.  Benchmarks are never timed
tests: the test suite only runs this at scale 1 with few repetitions to prove it works.

This module runs the benchmark, scale by scale, and describes the machine and the server; each
job is beside it: where it builds and how often it repeats (``bench_method.py``), the dbt builds
(``bench_builds.py``), the queries (``bench_queries.py``), the SQL floor (``bench_floor.py``,
``bench_floor.sql``), the targets (``bench_targets.py``) and the report (``bench_report.py``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_builds import (
    DbtRunner,
    change_one_percent,
    combine,
    drop_dbt_relations,
    median_run,
    runs_line,
)
from validation.bench_floor import floor_statements, time_floor
from validation.bench_history import history_series, measure_history_queries
from validation.bench_method import (
    DBT_SCHEMA,
    ENVIRONMENT,
    FLOOR_SCHEMA,
    FULL_REPETITIONS,
    NAIVE_SCHEMA,
    QUICK_REPETITIONS,
    SOURCE_SCHEMA,
    Progress,
    Repetitions,
    method,
)
from validation.bench_queries import (
    LAYOUTS,
    QUESTIONS,
    ROUND_TRIP,
    benchmark_queries,
    build_naive_layout,
    measure_query,
)
from validation.bench_report import (
    CHART_NAME,
    JSON_NAME,
    MARKDOWN_NAME,
    BenchResult,
    format_summary,
    render_chart,
    render_markdown,
)
from validation.bench_sync import measure_sync
from validation.bench_targets import evaluate_targets
from validation.connection import PROJECT_ROOT, connect, describe
from validation.errors import UserFacingError
from validation.ownership import drop_owned_database, recreate_owned_database

__all__ = [
    "CHART_NAME",
    "DEFAULT_OUT_DIR",
    "DEFAULT_SCALES",
    "FULL_REPETITIONS",
    "JSON_NAME",
    "LAYOUTS",
    "MARKDOWN_NAME",
    "QUESTIONS",
    "QUICK_REPETITIONS",
    "ROUND_TRIP",
    "BenchResult",
    "Repetitions",
    "benchmark_queries",
    "evaluate_targets",
    "floor_statements",
    "format_summary",
    "parse_scales",
    "render_chart",
    "render_markdown",
    "run_benchmark",
]

DEFAULT_SCALES: tuple[int, ...] = (1, 10, 100)
DEFAULT_OUT_DIR = PROJECT_ROOT / "docs"
# A selector that matches no node: what a dbt invocation costs before any model runs
NO_MODEL = "tag:bench_selects_no_model"
_median_run = median_run  # the name tests/test_benchmark.py checks it by


def parse_scales(text: str) -> tuple[int, ...]:
    """``"1,10,100"`` → ``(1, 10, 100)``, in order, without repeats.

    Raises UserFacingError, so call it in the command's handler rather than as an argparse
    ``type=`` (argparse only turns ValueError and TypeError into usage errors)."""
    try:
        scales = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        scales = ()
    if not scales or any(not 1 <= scale <= 1000 for scale in scales):
        raise UserFacingError(
            f"Invalid --scales {text!r}: give comma-separated integers from 1 to 1000, "
            "e.g. 1,10,100."
        )
    return tuple(dict.fromkeys(scales))


def run_benchmark(
    settings: Mapping[str, str],
    *,
    scales: Sequence[int] = DEFAULT_SCALES,
    out_dir: Path = DEFAULT_OUT_DIR,
    quick: bool = False,
    database_prefix: str = "bench",
    keep_databases: bool = False,
    progress: Progress = print,
) -> BenchResult:
    """Benchmark every scale on the server ``settings`` reach; write JSON, Markdown and a chart.

    ``settings`` are PG* variables; their ``PGDATABASE`` is only used to create and drop the
    benchmark's own databases, ``<database_prefix>_s<scale>`` (dropped when done unless
    ``keep_databases``).  ``quick`` runs each query a few times only (for tests: the figures
    are then not meaningful).
    """
    scales = parse_scales(",".join(str(scale) for scale in scales))
    repetitions = QUICK_REPETITIONS if quick else FULL_REPETITIONS
    started = time.perf_counter()
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m validation bench"
        + ("" if scales == DEFAULT_SCALES else f" --scales {','.join(map(str, scales))}")
        + (" --quick" if quick else ""),
        "machine": _machine(),
        "server": _server(settings),
        "method": method(repetitions, quick),
        "scales": [],
    }
    for scale in scales:
        report["scales"].append(
            _bench_scale(
                settings, scale, repetitions, database_prefix, keep_databases, progress,
                history=scale == max(scales),
            )
        )  # fmt: skip
    report["targets"] = evaluate_targets(report["scales"])
    report["elapsed_seconds"] = round(time.perf_counter() - started, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / JSON_NAME
    markdown_path = out_dir / MARKDOWN_NAME
    chart_path = out_dir / CHART_NAME
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(render_markdown(report, chart_name=CHART_NAME), encoding="utf-8")
    render_chart(report, chart_path)
    progress(f"wrote {json_path}, {markdown_path} and {chart_path}")
    return BenchResult(report, json_path, markdown_path, chart_path)


def _bench_scale(
    settings: Mapping[str, str],
    scale: int,
    repetitions: Repetitions,
    prefix: str,
    keep_database: bool,
    progress: Progress,
    *,
    history: bool,
) -> dict[str, Any]:
    database = f"{prefix}_s{scale}"
    if len(database.encode()) > 63:
        raise UserFacingError(f"The database prefix {prefix!r} is too long: use at most 55 bytes.")
    db_settings = {**settings, "PGDATABASE": database}

    def say(message: str) -> None:
        progress(f"scale {scale}: {message}")

    _recreate_database(settings, database)
    workspace = Path(tempfile.mkdtemp(prefix=f"bench-s{scale}-"))
    try:
        result = _measure_scale(db_settings, scale, repetitions, workspace, say, history=history)
    finally:
        if not keep_database:
            _drop_database(settings, database)
    shutil.rmtree(workspace, ignore_errors=True)
    return result


def _measure_scale(
    settings: Mapping[str, str],
    scale: int,
    repetitions: Repetitions,
    workspace: Path,
    say: Progress,
    *,
    history: bool,
) -> dict[str, Any]:
    """Every figure of one scale; with ``history``, also the history series (bench_history)."""
    from validation import sample

    dbt = DbtRunner(settings, workspace)
    load_average = {"before": _load_average()}
    with connect(settings, autocommit=True) as conn:
        say("loading the sample cache_entries …")
        summary = sample.load_sample(conn, schema=SOURCE_SCHEMA, scale=scale)
        say(f"  {summary.total_rows:,} rows in {summary.elapsed_seconds:.1f} s")

        say("dbt parse (untimed: every timed invocation then starts from a warm parse cache) …")
        dbt.run("parse")

        build: dict[str, Any] = {}
        say("full build, models only (dbt seed + dbt run) …")
        build["full_models_only"] = combine("dbt seed + dbt run", [dbt.run("seed"), dbt.run("run")])
        say(f"  {build['full_models_only']['wall_seconds']:.1f} s")

        drop_dbt_relations(conn)
        say("full build with tests (dbt build) …")
        build["full_with_tests"] = combine("dbt build", [dbt.run("build")])
        say(f"  {build['full_with_tests']['wall_seconds']:.1f} s")

        runs = repetitions.incremental_runs
        say(
            f"no-change incremental run (dbt run; median of {runs}, the first one right after "
            "the build) …"
        )
        build["incremental_no_change"] = median_run(
            [combine("dbt run", [dbt.run("run")]) for _ in range(runs)]
        )
        say(runs_line(build["incremental_no_change"]))

        say(f"dbt's own floor: a dbt run that selects no model (median of {runs}) …")
        build["dbt_floor"] = median_run(
            [
                combine("dbt run selecting no model", [dbt.run("run", "--select", NO_MODEL)])
                for _ in range(runs)
            ]
        )
        say(runs_line(build["dbt_floor"]))

        say(f"1 % of the entries changed, then an incremental run (dbt run; median of {runs}) …")
        changed_runs = []
        for _ in range(runs):
            changed = change_one_percent(conn)
            changed_run = combine("dbt run", [dbt.run("run")])
            changed_run["changed_entries"] = changed
            changed_runs.append(changed_run)
        build["incremental_1pct"] = median_run(changed_runs)
        say(f"{runs_line(build['incremental_1pct'])}; {changed:,} entries changed each time")

        say("the warm runner (sprint59 sync): 1 %-change runs and commit → visible latency …")
        warm = measure_sync(
            settings, conn, workspace, runs=runs, changes=repetitions.sync_changes, say=say
        )

        series = None
        if history:
            say(
                f"membership history: {repetitions.history_runs} more 1 %-changed runs, the "
                "history models' share of each …"
            )
            series = history_series(conn, dbt, repetitions.history_runs, say)

        say(f"hand-written SQL floor ({repetitions.floor_runs} run(s)) …")
        build["sql_floor"] = time_floor(conn, repetitions.floor_runs)
        say(f"  {build['sql_floor']['wall_seconds']:.1f} s (median)")

        say("copying the tables into the naive prototype layout …")
        build_naive_layout(conn)

        # the builds, the 1 % change and the copies above left fresh rows that autovacuum
        # would otherwise vacuum while the queries below are timed (2 cores: it takes one)
        say("vacuum (analyze) of the database: a steady state before the timings …")
        conn.execute("vacuum (analyze)")

        say("measuring query latency …")
        latency = [
            measure_query(conn, query, repetitions) for query in benchmark_queries(ENVIRONMENT)
        ]
        round_trip = measure_query(conn, ROUND_TRIP, repetitions)
        if series is not None:
            say("measuring the as-of questions on the history …")
            measure_history_queries(conn, series, repetitions)
        sizes = _sizes(conn)
        rows = _row_counts(conn)
    load_average["after"] = _load_average()
    return {
        "scale": scale,
        "load_average": load_average,
        "sample": {
            "cache_entries_rows": summary.total_rows,
            "load_seconds": round(summary.elapsed_seconds, 2),
        },
        "rows": rows,
        "build": build,
        "sync": warm,
        "memory": {
            step: {"peak_rss_mib": value.get("peak_rss_mib"), "what": value.get("memory_of")}
            for step, value in build.items()
        },
        "latency": latency,
        "round_trip": round_trip,
        "sizes": sizes,
        **({"history": series} if series is not None else {}),
    }


# --- the benchmark database ---------------------------------------------------------------


def _recreate_database(settings: Mapping[str, str], database: str) -> None:
    """A fresh benchmark database; one of the same name that the harness did not create is
    somebody's, and is never dropped (validation/ownership.py)."""
    try:
        recreate_owned_database(settings, database, "benchmark")
    except psycopg.Error as exc:
        raise UserFacingError(
            f"Cannot create the benchmark database {database} on {describe(settings)} "
            f"({_first_line(exc)}); the PG* user needs the CREATEDB privilege."
        ) from exc


def _drop_database(settings: Mapping[str, str], database: str) -> None:
    drop_owned_database(settings, database)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- sizes, machine, server ---------------------------------------------------------------


def _sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Bytes on disk (pg_total_relation_size: table, indexes, TOAST) per relation or group."""
    rows = conn.execute(
        "select n.nspname, c.relname, pg_total_relation_size(c.oid)"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p', 'm')"
        " and n.nspname not like 'pg\\_%%' and n.nspname <> 'information_schema'"
    ).fetchall()
    sizes: dict[str, int] = {}
    for schema, name, size in rows:
        if schema in (SOURCE_SCHEMA, DBT_SCHEMA):
            key = name
        elif schema in (NAIVE_SCHEMA, FLOOR_SCHEMA):
            key = f"{schema}.{name}"
        elif "_intermediate_" in schema:
            key = "intermediate models (all)"
        elif "_staging_" in schema:
            key = "staging schema (seed)"
        elif "_ops_" in schema:
            key = "operations marts (all)"
        else:
            key = f"{schema} (other)"
        sizes[key] = sizes.get(key, 0) + int(size)
    database = conn.execute("select pg_database_size(current_database())").fetchone()
    assert database is not None
    sizes["database"] = int(database[0])
    return dict(sorted(sizes.items()))


def _row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    statement = sql.SQL(
        "select (select count(*) from {cache}),"
        " (select count(*) from {dbt}.definition_groups where environment = %s),"
        " (select count(*) from {dbt}.group_memberships m join {dbt}.definition_groups g"
        "  on g.id = m.group_id where g.environment = %s),"
        " (select count(distinct symbol) from {dbt}.group_memberships),"
        " (select count(*) from {dbt}.etf_overlap where environment = %s)"
    ).format(cache=sql.Identifier(SOURCE_SCHEMA, "cache_entries"), dbt=sql.Identifier(DBT_SCHEMA))
    row = conn.execute(statement, (ENVIRONMENT,) * 3).fetchone()
    assert row is not None
    keys = ("cache_entries", "definition_groups", "group_memberships", "symbols", "etf_pairs")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def _load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other work on the machine skews timings)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        memory = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dbt_core": _version("dbt-core"),
        "dbt_postgres": _version("dbt-postgres"),
        "psycopg": _version("psycopg"),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "max_parallel_workers_per_gather",
    "jit",
    "random_page_cost",
)


def _server(settings: Mapping[str, str]) -> dict[str, Any]:
    with connect(settings, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        number = conn.execute("show server_version").fetchone()
        values = conn.execute(
            "select name, current_setting(name) from pg_settings"
            " where name = any(%s) order by name",
            (list(SERVER_SETTINGS),),
        ).fetchall()
    assert version is not None and number is not None
    host = settings.get("PGHOST", "")
    if host.startswith("/"):
        socket = Path(host)
        shown = socket.relative_to(PROJECT_ROOT) if socket.is_relative_to(PROJECT_ROOT) else socket
        where = f"Unix socket in {shown}"
    else:
        where = describe(settings)
    return {
        "version": number[0],
        "version_string": version[0],
        "where": where,
        "settings": dict(values),
        "memory_note": (
            "the server's memory is out of reach of a client benchmark (it may be remote, "
            "and its shared buffers are shared); peak memory is the dbt process's max RSS"
        ),
    }
