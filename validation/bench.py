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
  is out of reach of a client: it is not measured).

The results go to ``benchmarks.json``, ``benchmarks.md`` and ``benchmark_latency.png`` in
``out_dir``, with the issue's targets marked met or not met.  Benchmarks are never timed
tests: the test suite only runs this at scale 1 with few repetitions to prove it works.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.connection import PROJECT_ROOT, connect, describe
from validation.dbt import dbt_environment
from validation.errors import UserFacingError
from validation.ownership import drop_owned_database, recreate_owned_database
from validation.timings import percentile

DEFAULT_SCALES: tuple[int, ...] = (1, 10, 100)
DEFAULT_OUT_DIR = PROJECT_ROOT / "docs"
JSON_NAME = "benchmarks.json"
MARKDOWN_NAME = "benchmarks.md"
CHART_NAME = "benchmark_latency.png"

# A selector that matches no node: what a dbt invocation costs before any model runs
NO_MODEL = "tag:bench_selects_no_model"
TARGET = "default"  # the dbt target the benchmark builds ...
ENVIRONMENT = "DEFAULT"  # ... and the environment it migrates
SOURCE_SCHEMA = "legacy"  # where the sample cache_entries goes (the project's source_schema var)
DBT_SCHEMA = "public"  # where dbt puts the two tables and the analyst models
NAIVE_SCHEMA = "naive"  # the prototype layout: PK, unique (group_id, symbol), index on symbol
FLOOR_SCHEMA = "floor"  # the hand-written SQL transform's output
ETF, OTHER_ETF, SYMBOL = "SPY", "VOO", "AAPL"  # present at every scale (the first block)
CHANGE_EVERY = 100  # the 1 %-changed run changes every 100th mapped entry
CHANGED_AT = "2025-12-06T10:00:00+00:00"
MAPPED_TYPES = (
    "etf_holdings",
    "theme_definition",
    "sector_industry_map",
    "stock_universe",
    "etf_universe",
    "stock_metadata",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Repetitions:
    """How many times each query runs (a warm-up, then enough runs to fill a time budget),
    and how many times the SQL floor and each incremental dbt run are repeated (medians)."""

    warmup: int
    min_runs: int
    max_runs: int
    seconds_per_query: float
    floor_runs: int
    incremental_runs: int


FULL_REPETITIONS = Repetitions(
    warmup=10, min_runs=30, max_runs=500, seconds_per_query=2.5, floor_runs=3, incremental_runs=5
)
QUICK_REPETITIONS = Repetitions(
    warmup=1, min_runs=3, max_runs=10, seconds_per_query=0.05, floor_runs=1, incremental_runs=1
)


@dataclass(frozen=True)
class BenchResult:
    """What a benchmark run measured (``report``, as written to JSON) and where it went."""

    report: dict[str, Any]
    json_path: Path
    markdown_path: Path
    chart_path: Path

    @property
    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.report["targets"]
        return targets


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
        "method": _method(repetitions, quick),
        "scales": [],
    }
    for scale in scales:
        report["scales"].append(
            _bench_scale(settings, scale, repetitions, database_prefix, keep_databases, progress)
        )
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


def format_summary(result: BenchResult) -> str:
    """A few lines for the terminal: headline figures per scale and the targets."""
    lines = []
    for entry in result.report["scales"]:
        build = entry["build"]
        lat = {(q["question"], q["layout"]): q for q in entry["latency"]}
        lines.append(
            f"scale {entry['scale']}: full build {build['full_models_only']['wall_seconds']:.1f} s"
            f" (SQL floor {build['sql_floor']['wall_seconds']:.1f} s), no-change "
            f"{build['incremental_no_change']['wall_seconds']:.1f} s, 1 % changed "
            f"{build['incremental_1pct']['wall_seconds']:.1f} s; symbol's ETFs p50 "
            f"{lat[('symbol_etfs', 'spec_sql')]['p50_ms']:.2f} ms relational vs "
            f"{lat[('symbol_etfs', 'jsonb')]['p50_ms']:.2f} ms JSONB"
        )
    for target in result.targets:
        verdict = {True: "met", False: "NOT met", None: "not evaluated"}[target["met"]]
        lines.append(f"  [{verdict}] {target['target']}: {target['measured']}")
    return "\n".join(lines)


# --- one scale --------------------------------------------------------------------------------


def _bench_scale(
    settings: Mapping[str, str],
    scale: int,
    repetitions: Repetitions,
    prefix: str,
    keep_database: bool,
    progress: Progress,
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
        result = _measure_scale(db_settings, scale, repetitions, workspace, say)
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
) -> dict[str, Any]:
    from validation import sample

    dbt = _DbtRunner(settings, workspace)
    load_average = {"before": _load_average()}
    with connect(settings, autocommit=True) as conn:
        say("loading the sample cache_entries …")
        summary = sample.load_sample(conn, schema=SOURCE_SCHEMA, scale=scale)
        say(f"  {summary.total_rows:,} rows in {summary.elapsed_seconds:.1f} s")

        say("dbt parse (untimed: every timed invocation then starts from a warm parse cache) …")
        dbt.run("parse")

        build: dict[str, Any] = {}
        say("full build, models only (dbt seed + dbt run) …")
        build["full_models_only"] = _combine(
            "dbt seed + dbt run", [dbt.run("seed"), dbt.run("run")]
        )
        say(f"  {build['full_models_only']['wall_seconds']:.1f} s")

        _drop_dbt_relations(conn)
        say("full build with tests (dbt build) …")
        build["full_with_tests"] = _combine("dbt build", [dbt.run("build")])
        say(f"  {build['full_with_tests']['wall_seconds']:.1f} s")

        runs = repetitions.incremental_runs
        say(
            f"no-change incremental run (dbt run; median of {runs}, the first one right after "
            "the build) …"
        )
        build["incremental_no_change"] = _median_run(
            [_combine("dbt run", [dbt.run("run")]) for _ in range(runs)]
        )
        say(_runs_line(build["incremental_no_change"]))

        say(f"dbt's own floor: a dbt run that selects no model (median of {runs}) …")
        build["dbt_floor"] = _median_run(
            [
                _combine("dbt run selecting no model", [dbt.run("run", "--select", NO_MODEL)])
                for _ in range(runs)
            ]
        )
        say(_runs_line(build["dbt_floor"]))

        say(f"1 % of the entries changed, then an incremental run (dbt run; median of {runs}) …")
        changed_runs = []
        for _ in range(runs):
            changed = _change_one_percent(conn)
            changed_run = _combine("dbt run", [dbt.run("run")])
            changed_run["changed_entries"] = changed
            changed_runs.append(changed_run)
        build["incremental_1pct"] = _median_run(changed_runs)
        say(f"{_runs_line(build['incremental_1pct'])}; {changed:,} entries changed each time")

        say(f"hand-written SQL floor ({repetitions.floor_runs} run(s)) …")
        build["sql_floor"] = _time_floor(conn, repetitions.floor_runs)
        say(f"  {build['sql_floor']['wall_seconds']:.1f} s (median)")

        say("copying the tables into the naive prototype layout …")
        _build_naive_layout(conn)

        # the builds, the 1 % change and the copies above left fresh rows that autovacuum
        # would otherwise vacuum while the queries below are timed (2 cores: it takes one)
        say("vacuum (analyze) of the database: a steady state before the timings …")
        conn.execute("vacuum (analyze)")

        say("measuring query latency …")
        latency = [
            _measure_query(conn, query, repetitions) for query in benchmark_queries(ENVIRONMENT)
        ]
        round_trip = _measure_query(conn, ROUND_TRIP, repetitions)
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
        "memory": {
            step: {"peak_rss_mib": value.get("peak_rss_mib"), "what": value.get("memory_of")}
            for step, value in build.items()
        },
        "latency": latency,
        "round_trip": round_trip,
        "sizes": sizes,
    }


# --- dbt as a child process ---------------------------------------------------------------


class _DbtRunner:
    """Runs dbt commands for one benchmark database, in a private work directory.

    State lives here because every invocation shares the work directory (profiles, target
    path with the partial-parse cache, logs) and a counter that names the output files.
    """

    def __init__(self, settings: Mapping[str, str], workspace: Path) -> None:
        self.workspace = workspace
        self.environ = dbt_environment(settings) | {"DBT_SCHEMA": DBT_SCHEMA}
        self.count = 0
        shutil.copyfile(PROJECT_ROOT / "profiles.example.yml", workspace / "profiles.yml")
        (workspace / "logs").mkdir(exist_ok=True)

    def run(self, command: str, *selection: str) -> dict[str, Any]:
        self.count += 1
        target_path = self.workspace / "target"
        output = self.workspace / "logs" / f"{self.count:02d}-{command}.out"
        peak_file = self.workspace / "logs" / f"{self.count:02d}-{command}.vmhwm"
        argv = [
            *_dbt_with_peak_memory(peak_file), command,
            "--project-dir", str(PROJECT_ROOT),
            "--profiles-dir", str(self.workspace),
            "--target", TARGET,
            "--target-path", str(target_path),
            "--log-path", str(self.workspace / "logs"),
            "--vars", json.dumps({"source_schema": SOURCE_SCHEMA}),
            *selection,
        ]  # fmt: skip
        (target_path / "run_results.json").unlink(missing_ok=True)  # never read a stale one
        started = time.perf_counter()
        with output.open("w", encoding="utf-8") as out:
            child = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=self.environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                _, status, usage = os.wait4(child.pid, 0)
            except BaseException:
                child.kill()
                child.wait()
                raise
            child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise UserFacingError(
                f"'dbt {command}' failed in the benchmark (exit {child.returncode}); its output "
                f"is in {output}."
            )
        has_results = command != "parse"
        results = _read_json(target_path / "run_results.json") if has_results else {}
        manifest = _read_json(target_path / "manifest.json")
        return {
            "command": f"dbt {command}",
            "wall_seconds": round(wall, 3),
            "dbt_elapsed_seconds": round(float(results.get("elapsed_time", 0.0)), 3),
            "node_seconds": _node_seconds(results, manifest),
            "materializations": _materializations(manifest),
            **_peak_memory(peak_file, usage.ru_maxrss),
        }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserFacingError(
            f"dbt left no readable {path.name} in {path.parent} ({exc})."
        ) from exc
    return loaded


# dbt's own entry point, run by this interpreter, writing the process's peak resident set
# (VmHWM, KiB) to the file named by its first argument when it exits.
_PEAK_MEMORY_WRAPPER = """
import atexit, sys
from pathlib import Path

def record(path=Path(sys.argv[1])):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            path.write_text(line.split()[1])

if Path('/proc/self/status').exists():
    atexit.register(record)
sys.argv = ['dbt', *sys.argv[2:]]
from dbt.cli.main import cli
sys.exit(cli())
"""


def _dbt_with_peak_memory(peak_file: Path) -> list[str]:
    """The dbt command line, wrapped so that it reports its own peak memory.

    The rusage of a child (wait4) cannot be used on Linux: its ru_maxrss keeps the high-water
    mark of the address space the child was forked from, so every dbt process would report at
    least this benchmark's own memory (0.4 GiB after generating the scale-100 sample).  VmHWM,
    read by the process itself, counts only dbt's own address space.
    """
    return [sys.executable, "-c", _PEAK_MEMORY_WRAPPER, str(peak_file)]


def _peak_memory(peak_file: Path, maxrss: int) -> dict[str, Any]:
    """dbt's VmHWM when it wrote one (Linux); otherwise ru_maxrss (bytes on macOS), which
    may include the benchmark's own memory (peak_rss_source says which)."""
    try:
        mib, source = int(peak_file.read_text(encoding="utf-8")) / 1024, "VmHWM"
    except (OSError, ValueError):
        mib = maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024
        source = "ru_maxrss"
    return {"peak_rss_mib": round(mib, 1), "peak_rss_source": source}


_KIND_LAYER = {"operation": "hooks", "seed": "seed", "test": "tests", "unit_test": "tests"}
_LAYER_ORDER = ("hooks", "seed", "staging", "intermediate", "core", "analytics", "tests")


def _node_seconds(results: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, float]:
    """Execution time per layer: hooks, seed, the model folders (staging, intermediate, core,
    analytics, ...) and tests (data and unit tests)."""
    nodes = manifest.get("nodes", {})
    totals: dict[str, float] = {}
    for result in results.get("results", []):
        unique_id: str = result.get("unique_id", "")
        kind = unique_id.split(".", 1)[0]
        if kind == "model":
            fqn = nodes.get(unique_id, {}).get("fqn", [])
            layer = fqn[-2] if len(fqn) >= 3 else "models"
        else:
            layer = _KIND_LAYER.get(kind, "other")
        totals[layer] = totals.get(layer, 0.0) + float(result.get("execution_time") or 0.0)
    return {layer: round(totals[layer], 3) for layer in sorted(totals, key=_layer_rank)}


def _layer_rank(layer: str) -> tuple[int, str]:
    return (_LAYER_ORDER.index(layer) if layer in _LAYER_ORDER else len(_LAYER_ORDER), layer)


def _materializations(manifest: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """How the models of each folder are materialized, e.g. {"intermediate": {"table": 6}}."""
    found: dict[str, dict[str, int]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        fqn = node.get("fqn", [])
        layer = fqn[-2] if len(fqn) >= 3 else "models"
        kind = str(node.get("config", {}).get("materialized", "?"))
        found.setdefault(layer, {})
        found[layer][kind] = found[layer].get(kind, 0) + 1
    return found


def _combine(label: str, invocations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    node_seconds: dict[str, float] = {}
    for invocation in invocations:
        for layer, seconds in invocation["node_seconds"].items():
            node_seconds[layer] = round(node_seconds.get(layer, 0.0) + seconds, 3)
    return {
        "what": label,
        "wall_seconds": round(sum(i["wall_seconds"] for i in invocations), 3),
        "dbt_elapsed_seconds": round(sum(i["dbt_elapsed_seconds"] for i in invocations), 3),
        "node_seconds": node_seconds,
        "peak_rss_mib": max(i["peak_rss_mib"] for i in invocations),
        "memory_of": "the dbt process (max RSS); the server's memory is not measured",
        "invocations": list(invocations),
    }


def _median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (a real run, so its per-layer times stay consistent),
    with every run's wall time beside it."""
    ordered = sorted(runs, key=lambda run: run["wall_seconds"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["runs_wall_seconds"] = [run["wall_seconds"] for run in runs]
    return median


def _runs_line(step: Mapping[str, Any]) -> str:
    runs = step.get("runs_wall_seconds", [step["wall_seconds"]])
    listed = " / ".join(f"{seconds:.1f}" for seconds in runs)
    return f"  {step['wall_seconds']:.1f} s" + (
        f" (median; runs {listed} s)" if len(runs) > 1 else ""
    )


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


def _drop_dbt_relations(conn: psycopg.Connection[Any]) -> None:
    """Empty the benchmark database of everything but the legacy source (a fresh start)."""
    schemas = [
        row[0]
        for row in conn.execute(
            "select nspname from pg_namespace where nspname <> all(%s)"
            " and nspname not like 'pg\\_%%' and nspname <> 'information_schema'",
            ([SOURCE_SCHEMA],),
        )
    ]
    with conn.transaction():
        for schema in schemas:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(DBT_SCHEMA)))


def _change_one_percent(conn: psycopg.Connection[Any]) -> int:
    """Change every CHANGE_EVERY-th mapped entry of the environment (deterministic: by type,
    key, name), the way the legacy loaders do: a holding or theme member dropped, a stock's
    industry revised, other entries' content touched; updated_at set."""
    statement = sql.SQL(
        """
        with ranked as (
            select id, row_number() over (order by type, key, name) as n
            from {cache}
            where environment = %(environment)s and type = any(%(types)s)
        )
        update {cache} as e set
            value = case
                when e.type = 'etf_holdings' and jsonb_typeof(e.value -> 'holdings') = 'array'
                    then jsonb_set(e.value #- '{{holdings,-1}}', '{{last_updated}}',
                                   to_jsonb(%(stamp)s::text))
                when e.type = 'theme_definition' and jsonb_typeof(e.value -> 'symbols') = 'array'
                    then e.value #- '{{symbols,-1}}'
                when e.type = 'stock_metadata' and jsonb_typeof(e.value) = 'object'
                    then jsonb_set(e.value, '{{industry}}',
                                   to_jsonb(coalesce(e.value ->> 'industry', '') || ' (revised)'))
                when jsonb_typeof(e.value) = 'array' then e.value #- '{{-1}}'
                when jsonb_typeof(e.value) = 'object'
                    then e.value || jsonb_build_object('revised_at', %(stamp)s::text)
                else e.value
            end,
            updated_at = %(stamp)s::timestamptz
        from ranked
        where ranked.id = e.id and ranked.n %% {every} = 0
        """
    ).format(cache=sql.Identifier(SOURCE_SCHEMA, "cache_entries"), every=CHANGE_EVERY)
    with conn.transaction():
        changed = conn.execute(
            statement,
            {"environment": ENVIRONMENT, "types": list(MAPPED_TYPES), "stamp": CHANGED_AT},
        ).rowcount
        conn.execute(sql.SQL("analyze {}").format(sql.Identifier(SOURCE_SCHEMA, "cache_entries")))
    return changed


# --- the two tables' DDL (the spec's), the naive layout and the SQL floor -----------------

_GROUPS_DDL = """
create table {schema}.definition_groups (
    id serial primary key,
    name varchar(100) not null,
    type varchar(50) not null check (type in ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM')),
    description text,
    metadata jsonb,
    liquidity_filter jsonb,
    environment varchar(10) not null check (environment in ('DEFAULT', 'TEST', 'UAT', 'PROD')),
    created_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    last_update timestamp without time zone default current_timestamp
    {unique_group}
)
"""
_MEMBERSHIPS_DDL = """
create table {schema}.group_memberships (
    id serial primary key,
    group_id integer not null references {schema}.definition_groups (id) on delete cascade,
    symbol varchar(50) not null,
    weight numeric(5, 4),
    metadata jsonb,
    added_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    constraint unique_membership unique (group_id, symbol)
)
"""
_GROUP_COLUMNS = (
    "id, name, type, description, metadata, liquidity_filter, environment, created_at, "
    "updated_at, last_update"
)
_MEMBERSHIP_COLUMNS = "id, group_id, symbol, weight, metadata, added_at, updated_at"


def _ddl(template: str, schema: str, *, unique_group: bool = True) -> sql.Composed:
    return sql.SQL(template).format(
        schema=sql.Identifier(schema),
        unique_group=sql.SQL(
            ", constraint unique_group unique (name, type, environment)" if unique_group else ""
        ),
    )


def _build_naive_layout(conn: psycopg.Connection[Any]) -> None:
    """The issue's prototype: the same rows with only a PK, a unique (group_id, symbol) and an
    index on symbol (and the FK), analyzed."""
    naive, source = sql.Identifier(NAIVE_SCHEMA), sql.Identifier(DBT_SCHEMA)
    with conn.transaction():
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(naive))
        conn.execute(sql.SQL("create schema {}").format(naive))
        conn.execute(_ddl(_GROUPS_DDL, NAIVE_SCHEMA, unique_group=False))
        conn.execute(_ddl(_MEMBERSHIPS_DDL, NAIVE_SCHEMA))
        for table, columns in (
            ("definition_groups", _GROUP_COLUMNS),
            ("group_memberships", _MEMBERSHIP_COLUMNS),
        ):
            conn.execute(
                sql.SQL("insert into {}.{} ({}) select {} from {}.{}").format(
                    naive,
                    sql.Identifier(table),
                    sql.SQL(columns),
                    sql.SQL(columns),
                    source,
                    sql.Identifier(table),
                )
            )
        conn.execute(sql.SQL("create index on {}.group_memberships (symbol)").format(naive))
        conn.execute(sql.SQL("analyze {}.definition_groups").format(naive))
        conn.execute(sql.SQL("analyze {}.group_memberships").format(naive))


# The floor: cache_entries → the two tables for one environment, by hand, with the models'
# rules (environment spelling, type mapping, latest version wins, etf_ prefix, name
# collisions, member list shapes, symbol normalisation and validity, weights, first
# occurrence wins, sectors from stock_metadata, provenance and checksum in metadata).  It
# records no exceptions and trusts ISO dates that look valid, which the models do not.
_FLOOR_STATEMENTS: tuple[str, ...] = (
    "drop schema if exists {floor} cascade",
    "create schema {floor}",
    "__groups_ddl__",
    "__memberships_ddl__",
    """
    create temp table floor_entries on commit drop as
    with env_entries as (
        select
            e.id as cache_id, e.type as cache_type, e.key, e.name as entry_name, e.value,
            coalesce(e.updated_at, e.created_at) as stamp
        from {cache} as e
        where e.type = any(%(types)s)
          and upper(btrim(e.environment, E' \\t\\r\\n')) = %(environment)s
    ),
    mapped as (
        select
            *,
            case cache_type
                when 'etf_holdings' then 'ETF' when 'theme_definition' then 'THEME'
                when 'sector_industry_map' then 'SECTOR' else 'CUSTOM'
            end as group_type,
            case
                when cache_type = 'etf_universe' and not starts_with(key, 'etf_')
                    then 'etf_' || key
                else key
            end as group_name,
            case
                when cache_type in ('theme_definition', 'sector_industry_map')
                    then case when jsonb_typeof(value -> 'description') = 'string'
                        then value ->> 'description' end
                else entry_name
            end as description,
            case
                when cache_type = 'etf_holdings'
                    then case when jsonb_typeof(value -> 'holdings') = 'array' then 'holdings' end
                when cache_type = 'theme_definition'
                    then case when jsonb_typeof(value -> 'symbols') = 'array' then 'symbols' end
                when cache_type = 'sector_industry_map'
                    then case when jsonb_typeof(value) = 'object' then '(sectors)' end
                when jsonb_typeof(value) = 'array' then '(value)'
                when jsonb_typeof(value -> 'symbols') = 'array' then 'symbols'
                when jsonb_typeof(value -> 'stocks') = 'array' then 'stocks'
                when jsonb_typeof(value -> 'etfs') = 'array' then 'etfs'
            end as list_path,
            row_number() over (
                partition by cache_type, key order by stamp desc nulls last, cache_id desc
            ) as version
        from env_entries
        where cache_type <> 'stock_metadata'
    ),
    valid as (
        select * from mapped
        where version = 1 and list_path is not null and btrim(key) <> ''
          and char_length(group_name) <= 100
    )
    select
        row_number() over (order by group_type, group_name, cache_type, key)::integer as id,
        *
    from (
        select
            *,
            row_number() over (
                partition by group_type, group_name
                order by (group_name = key) desc, cache_type, key
            ) as name_rank
        from valid
    ) as ranked
    where name_rank = 1
    """,
    """
    insert into {floor}.definition_groups (
        id, name, type, description, metadata, liquidity_filter, environment,
        created_at, updated_at, last_update
    )
    select
        id, group_name, group_type, description,
        jsonb_build_object('source', jsonb_build_object(
            'type', cache_type, 'key', key, 'name', entry_name, 'checksum', md5(value::text)))
        || case
            when jsonb_typeof(value) <> 'object' then '{{}}'::jsonb
            when list_path in ('holdings', 'symbols', 'stocks', 'etfs') then value - list_path
            else value
        end,
        case when jsonb_typeof(value -> 'market_cap_threshold') = 'number'
            then jsonb_build_object('market_cap_threshold', value -> 'market_cap_threshold')
        end,
        %(environment)s,
        now() at time zone 'UTC', now() at time zone 'UTC',
        case
            when value ->> 'last_updated'
                ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}:\\d{{2}}$'
                then (value ->> 'last_updated')::timestamp
            else stamp at time zone 'UTC'
        end
    from floor_entries
    """,
    "select setval(pg_get_serial_sequence(%(groups)s, 'id'), "
    "(select coalesce(max(id), 0) + 1 from {floor}.definition_groups), false)",
    """
    insert into {floor}.group_memberships (group_id, symbol, weight, metadata, added_at, updated_at)
    with list_elements as (
        select g.id as group_id, listed.ordinality::integer as position, listed.element
        from floor_entries as g
        cross join lateral jsonb_array_elements(
            case when g.list_path = '(value)' then g.value else g.value -> g.list_path end
        ) with ordinality as listed (element, ordinality)
        where g.list_path <> '(sectors)'
    ),
    list_members as (
        select
            group_id, position,
            upper(btrim(case jsonb_typeof(element)
                when 'string' then element #>> '{{}}'
                when 'object' then coalesce(element ->> 'symbol', element ->> 'ticker')
            end)) as symbol,
            case
                when jsonb_typeof(element -> 'weight') = 'number'
                    and (element ->> 'weight')::numeric between 0 and 1
                    then round((element ->> 'weight')::numeric, 4)
                when jsonb_typeof(element -> 'weight_pct') = 'number'
                    and (element ->> 'weight_pct')::numeric between 0 and 100
                    then round((element ->> 'weight_pct')::numeric / 100, 4)
            end as weight,
            jsonb_build_object('position', position)
            || case when jsonb_typeof(element) = 'object'
                then element - 'symbol' - 'ticker' - 'weight' - 'weight_pct'
                else '{{}}'::jsonb end as metadata
        from list_elements
    ),
    stocks as (
        select distinct on (upper(btrim(e.key)))
            upper(btrim(e.key)) as symbol,
            lower(btrim(e.value ->> 'sector')) as sector_label,
            e.value ->> 'industry' as industry
        from {cache} as e
        where e.type = 'stock_metadata'
          and upper(btrim(e.environment, E' \\t\\r\\n')) = %(environment)s
        order by upper(btrim(e.key)), coalesce(e.updated_at, e.created_at) desc nulls last,
                 e.id desc
    ),
    sector_members as (
        select distinct on (s.symbol)
            g.id as group_id, null::integer as position, s.symbol, null::numeric as weight,
            jsonb_strip_nulls(jsonb_build_object('industry', s.industry)) as metadata
        from stocks as s
        join floor_entries as g
            on g.group_type = 'SECTOR'
           and s.sector_label in (
               lower(g.key), lower(g.entry_name), lower(replace(g.key, '_', ' '))
           )
        order by s.symbol, (s.sector_label = lower(g.key)) desc, g.key
    ),
    all_members as (
        select * from list_members
        union all
        select * from sector_members
    )
    select distinct on (group_id, symbol)
        group_id, symbol, weight, metadata, now() at time zone 'UTC', now() at time zone 'UTC'
    from all_members
    where symbol ~ '^[A-Z0-9][A-Z0-9.-]{{0,9}}$'
    order by group_id, symbol, position nulls last
    """,
    "create index on {floor}.definition_groups (environment, type)",
    "create index on {floor}.group_memberships (symbol, group_id)",
    "analyze {floor}.definition_groups",
    "analyze {floor}.group_memberships",
)


def floor_statements() -> list[sql.Composed]:
    """The SQL floor's statements, in order (run them in one transaction)."""
    names = {
        "floor": sql.Identifier(FLOOR_SCHEMA),
        "cache": sql.Identifier(SOURCE_SCHEMA, "cache_entries"),
    }
    statements = []
    for text in _FLOOR_STATEMENTS:
        if text == "__groups_ddl__":
            statements.append(_ddl(_GROUPS_DDL, FLOOR_SCHEMA))
        elif text == "__memberships_ddl__":
            statements.append(_ddl(_MEMBERSHIPS_DDL, FLOOR_SCHEMA))
        else:
            statements.append(sql.SQL(text).format(**names))
    return statements


def _time_floor(conn: psycopg.Connection[Any], runs: int) -> dict[str, Any]:
    params = {
        "environment": ENVIRONMENT,
        "types": list(MAPPED_TYPES),
        "groups": f"{FLOOR_SCHEMA}.definition_groups",
    }
    statements = floor_statements()
    samples = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        with conn.transaction():
            for statement in statements:
                conn.execute(statement, params if "%(" in statement.as_string(conn) else None)
        samples.append(time.perf_counter() - started)
    return {
        "what": "one hand-written SQL script, one transaction (cache_entries → the two tables)",
        "wall_seconds": round(statistics.median(samples), 3),
        "runs_seconds": [round(s, 3) for s in samples],
        "peak_rss_mib": None,
        "memory_of": "runs inside the server, whose memory is not measured",
        "parity": _floor_parity(conn),
    }


def _floor_parity(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How far the floor's rows are from the models' (groups, memberships by type/name/symbol)."""
    statement = sql.SQL(
        """
        with models as (
            select g.type, g.name, m.symbol from {dbt}.group_memberships m
            join {dbt}.definition_groups g on g.id = m.group_id where g.environment = %s
        ), floor as (
            select g.type, g.name, m.symbol from {floor}.group_memberships m
            join {floor}.definition_groups g on g.id = m.group_id
        )
        select
            (select count(*) from {dbt}.definition_groups where environment = %s),
            (select count(*) from {floor}.definition_groups),
            (select count(*) from models),
            (select count(*) from floor),
            (select count(*) from (select * from models except select * from floor) d),
            (select count(*) from (select * from floor except select * from models) d)
        """
    ).format(dbt=sql.Identifier(DBT_SCHEMA), floor=sql.Identifier(FLOOR_SCHEMA))
    row = conn.execute(statement, (ENVIRONMENT, ENVIRONMENT)).fetchone()
    assert row is not None
    keys = (
        "model_groups",
        "floor_groups",
        "model_memberships",
        "floor_memberships",
        "memberships_only_in_models",
        "memberships_only_in_floor",
    )
    return dict(zip(keys, (int(v) for v in row), strict=True))


# --- queries ------------------------------------------------------------------------------

QUESTIONS: dict[str, str] = {
    "etf_holdings": f"an ETF's holdings ({ETF})",
    "symbol_etfs": f"a symbol's ETFs ({SYMBOL})",
    "sector_counts": "symbols per sector",
    "etf_overlap": f"overlap of two ETFs ({ETF}, {OTHER_ETF})",
}
LAYOUTS: dict[str, str] = {
    "spec_sql": "relational: the spec's SQL on the tables as the models leave them",
    "naive": "relational, naive layout (PK, unique (group_id, symbol), index on symbol)",
    "analyst_model": "the analyst models (symbol_memberships, group_summary, etf_overlap)",
    "jsonb": "legacy JSONB on cache_entries",
    "jsonb_stock_metadata": "legacy JSONB via stock_metadata.member_of_etfs",
}


@dataclass(frozen=True)
class BenchQuery:
    """One way of answering one question: its statement (psycopg placeholders) and params."""

    question: str
    layout: str
    statement: sql.Composed
    params: tuple[Any, ...]


def benchmark_queries(environment: str) -> list[BenchQuery]:
    """Every question in every layout; the spec's three statements word for word."""
    dbt, naive = sql.Identifier(DBT_SCHEMA), sql.Identifier(NAIVE_SCHEMA)
    cache = sql.Identifier(SOURCE_SCHEMA, "cache_entries")
    env = environment

    def spec(schema: sql.Identifier, text: str) -> sql.Composed:
        return sql.SQL(text).format(
            groups=sql.SQL("{}.definition_groups").format(schema),
            memberships=sql.SQL("{}.group_memberships").format(schema),
        )

    etf_holdings = (
        "select gm.symbol from {memberships} gm join {groups} dg on dg.id = gm.group_id"
        " where dg.name = %s and dg.type = 'ETF' and dg.environment = %s"
    )
    symbol_etfs = (
        "select dg.name from {groups} dg join {memberships} gm on gm.group_id = dg.id"
        " where gm.symbol = %s and dg.type = 'ETF' and dg.environment = %s"
    )
    sector_counts = (
        "select dg.name, count(distinct gm.symbol) from {groups} dg"
        " join {memberships} gm on gm.group_id = dg.id"
        " where dg.type = 'SECTOR' and dg.environment = %s group by dg.name"
    )
    etf_overlap = (
        "select count(*) from {memberships} a join {memberships} b on b.symbol = a.symbol"
        " where a.group_id = (select id from {groups}"
        " where name = %s and type = 'ETF' and environment = %s)"
        " and b.group_id = (select id from {groups}"
        " where name = %s and type = 'ETF' and environment = %s)"
    )
    queries: list[BenchQuery] = []
    for layout, schema in (("spec_sql", dbt), ("naive", naive)):
        queries += [
            BenchQuery("etf_holdings", layout, spec(schema, etf_holdings), (ETF, env)),
            BenchQuery("symbol_etfs", layout, spec(schema, symbol_etfs), (SYMBOL, env)),
            BenchQuery("sector_counts", layout, spec(schema, sector_counts), (env,)),
            BenchQuery(
                "etf_overlap", layout, spec(schema, etf_overlap), (ETF, env, OTHER_ETF, env)
            ),
        ]

    def on(relation: sql.Composable, text: str) -> sql.Composed:
        return sql.SQL(text).format(relation=relation)

    queries += [
        BenchQuery(
            "symbol_etfs",
            "analyst_model",
            on(
                sql.SQL("{}.symbol_memberships").format(dbt),
                "select etfs from {relation} where environment = %s and symbol = %s",
            ),
            (env, SYMBOL),
        ),
        BenchQuery(
            "sector_counts",
            "analyst_model",
            on(
                sql.SQL("{}.group_summary").format(dbt),
                "select name, member_count from {relation}"
                " where environment = %s and type = 'SECTOR'",
            ),
            (env,),
        ),
        BenchQuery(
            "etf_overlap",
            "analyst_model",
            on(
                sql.SQL("{}.etf_overlap").format(dbt),
                "select shared_symbols from {relation}"
                " where environment = %s and etf = %s and other_etf = %s",
            ),
            (env, ETF, OTHER_ETF),
        ),
        BenchQuery(
            "etf_holdings",
            "jsonb",
            on(
                cache,
                "select value -> 'holdings' from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s",
            ),
            (ETF, env),
        ),
        BenchQuery(
            "symbol_etfs",
            "jsonb",
            on(
                cache,
                "select key from {relation}"
                " where type = 'etf_holdings' and environment = %s and value -> 'holdings' ? %s",
            ),
            (env, SYMBOL),
        ),
        BenchQuery(
            "symbol_etfs",
            "jsonb_stock_metadata",
            on(
                cache,
                "select value -> 'member_of_etfs' from {relation}"
                " where type = 'stock_metadata' and key = %s and environment = %s",
            ),
            (SYMBOL, env),
        ),
        BenchQuery(
            "sector_counts",
            "jsonb",
            on(
                cache,
                "select value ->> 'sector', count(distinct key) from {relation}"
                " where type = 'stock_metadata' and environment = %s group by 1",
            ),
            (env,),
        ),
        BenchQuery(
            "etf_overlap",
            "jsonb",
            on(
                cache,
                "select count(*) from ("
                " select jsonb_array_elements_text(value -> 'holdings') from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s"
                " intersect"
                " select jsonb_array_elements_text(value -> 'holdings') from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s) as shared",
            ),
            (ETF, env, OTHER_ETF, env),
        ),
    ]
    return queries


# The floor under every latency: one trivial statement on the same connection and client.
ROUND_TRIP = BenchQuery("round_trip", "floor", sql.Composed([sql.SQL("select %s::integer")]), (1,))


def _answer_size(rows: Sequence[tuple[Any, ...]]) -> int:
    """How big the answer is, comparable across layouts: list items, a count, or rows."""
    if len(rows) == 1 and len(rows[0]) == 1:
        value = rows[0][0]
        if isinstance(value, list):
            return len(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return len(rows)


def _measure_query(
    conn: psycopg.Connection[Any], query: BenchQuery, repetitions: Repetitions
) -> dict[str, Any]:
    """Warm up, then run the query enough times for the budget; each run fetches every row."""
    with conn.cursor() as cur:
        warm_started = time.perf_counter()
        warmups = 0
        while warmups < max(1, repetitions.warmup):
            cur.execute(query.statement, query.params)
            cur.fetchall()
            warmups += 1
            if time.perf_counter() - warm_started > repetitions.seconds_per_query / 2:
                break
        estimate = (time.perf_counter() - warm_started) / warmups
        runs = int(repetitions.seconds_per_query / max(estimate, 1e-6))
        runs = max(repetitions.min_runs, min(repetitions.max_runs, runs))
        samples = []
        rows: list[tuple[Any, ...]] = []
        for _ in range(runs):
            started = time.perf_counter()
            cur.execute(query.statement, query.params)
            rows = cur.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return {
        "question": query.question,
        "layout": query.layout,
        "sql": query.statement.as_string(conn),
        "params": list(query.params),
        "runs": runs,
        "rows": len(rows),
        "answer_size": _answer_size(rows),
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(percentile(samples, 0.95), 4),
        "p99_ms": round(percentile(samples, 0.99), 4),
        "max_ms": round(max(samples), 4),
    }


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


def _method(repetitions: Repetitions, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "environment": ENVIRONMENT,
        "dbt_target": TARGET,
        "query_warmup_runs": repetitions.warmup,
        "query_runs": f"{repetitions.min_runs} to {repetitions.max_runs}, "
        f"about {repetitions.seconds_per_query:g} s per query",
        "sql_floor_runs": repetitions.floor_runs,
        "latency": "client-side wall time of execute + fetchall with psycopg 3 on one "
        "autocommit connection, warm (after the warm-up runs), parameters bound by psycopg "
        "(which prepares a statement after 5 executions), after a VACUUM (ANALYZE) of the "
        "whole database so that autovacuum does not compete with the timed queries",
        "builds": "wall time of each dbt child process (start-up and partial parsing "
        "included; an untimed dbt parse first fills the parse cache); "
        "dbt_elapsed_seconds is dbt's own elapsed time and node_seconds the models' and "
        "tests' execution time per layer (run_results.json)",
        "changed_entries": f"every {CHANGE_EVERY}th {ENVIRONMENT} entry of the mapped types "
        "and stock_metadata (ordered by type, key, name) gets a content change and a new "
        "updated_at",
    }


# --- targets ------------------------------------------------------------------------------


def _latency(entry: Mapping[str, Any], question: str, layout: str) -> dict[str, Any] | None:
    for timing in entry["latency"]:
        if timing["question"] == question and timing["layout"] == layout:
            found: dict[str, Any] = timing
            return found
    return None


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _best_project(entry: Mapping[str, Any], question: str) -> dict[str, Any]:
    """The project's fastest answer to a question: the spec's SQL or an analyst model."""
    candidates = [
        timing
        for layout in ("spec_sql", "analyst_model")
        if (timing := _latency(entry, question, layout)) is not None
    ]
    return min(candidates, key=lambda timing: timing["p50_ms"])


def evaluate_targets(scales: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each met, not met, or not evaluated (its scale was not run)."""
    by_scale = {entry["scale"]: entry for entry in scales}
    targets: list[dict[str, Any]] = []

    def add(name: str, scale: int, check: Callable[[Mapping[str, Any]], tuple[bool, str]]) -> None:
        entry = by_scale.get(scale)
        if entry is None:
            targets.append(
                {"target": name, "scale": scale, "met": None, "measured": "scale not run"}
            )
            return
        met, measured = check(entry)
        targets.append({"target": name, "scale": scale, "met": met, "measured": measured})

    legacy_forms = [
        ("etf_holdings", "jsonb"),
        ("symbol_etfs", "jsonb"),
        ("symbol_etfs", "jsonb_stock_metadata"),
        ("sector_counts", "jsonb"),
        ("etf_overlap", "jsonb"),
    ]
    for question, legacy in legacy_forms:

        def ten_x(
            entry: Mapping[str, Any], q: str = question, lg: str = legacy
        ) -> tuple[bool, str]:
            best = _best_project(entry, q)
            old = _latency(entry, q, lg)
            assert old is not None
            ratio = old["p50_ms"] / best["p50_ms"]
            measured = (
                f"{_times(ratio)} ({best['layout']} {best['p50_ms']:.3g} ms vs "
                f"{lg} {old['p50_ms']:.3g} ms, p50)"
            )
            floor = entry.get("round_trip", {}).get("p50_ms")
            if ratio < 10 and floor is not None and old["p50_ms"] / 10 < floor:
                measured += (
                    f"; 10x would take {old['p50_ms'] / 10:.3g} ms, under the "
                    f"{floor:.3g} ms of a bare `select 1` round trip"
                )
            return ratio >= 10, measured

        add(f"{QUESTIONS[question]}: ≥ 10x faster than {LAYOUTS[legacy]}", 100, ten_x)

    def holdings_2x(entry: Mapping[str, Any]) -> tuple[bool, str]:
        ours = _latency(entry, "etf_holdings", "spec_sql")
        blob = _latency(entry, "etf_holdings", "jsonb")
        assert ours is not None and blob is not None
        ratio = ours["p50_ms"] / blob["p50_ms"]
        return ratio <= 2, (
            f"{_times(ratio)} the blob ({ours['p50_ms']:.3g} ms vs {blob['p50_ms']:.3g} ms, p50)"
        )

    add("an ETF's holdings within 2x of the JSONB blob", 1, holdings_2x)

    for question, budget in (("etf_holdings", 5.0), ("symbol_etfs", 5.0), ("sector_counts", 20.0)):

        def within(
            entry: Mapping[str, Any], q: str = question, b: float = budget
        ) -> tuple[bool, str]:
            timing = _latency(entry, q, "spec_sql")
            assert timing is not None
            return timing["p95_ms"] <= b, f"p95 {timing['p95_ms']:.3g} ms (budget {b:g} ms)"

        add(f"the spec's SQL for {QUESTIONS[question]}: p95 within {budget:g} ms", 10, within)

    def build_3x(entry: Mapping[str, Any]) -> tuple[bool, str]:
        full = entry["build"]["full_models_only"]["wall_seconds"]
        floor = entry["build"]["sql_floor"]["wall_seconds"]
        ratio = full / floor
        return ratio <= 3, f"{_times(ratio)} ({full:.1f} s vs floor {floor:.1f} s)"

    add("full build (models only) within 3x of the SQL floor", 100, build_3x)

    for step, share in (("incremental_1pct", 0.15), ("incremental_no_change", 0.10)):

        def incremental(
            entry: Mapping[str, Any], s: str = step, limit: float = share
        ) -> tuple[bool, str]:
            full = entry["build"]["full_models_only"]["wall_seconds"]
            took = entry["build"][s]["wall_seconds"]
            floor = entry["build"].get("dbt_floor", {}).get("wall_seconds")
            return took <= limit * full, (
                f"{100 * took / full:.0f} % ({took:.1f} s vs full build {full:.1f} s"
                + ("" if floor is None else f"; dbt's own floor {floor:.1f} s of it")
                + ")"
            )

        label = "1 %-changed" if step == "incremental_1pct" else "no-change"
        add(f"{label} incremental run ≤ {share:.0%} of the full build", 100, incremental)
    return targets


# --- Markdown -----------------------------------------------------------------------------


def _ms(value: float) -> str:
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f}"


def _loads(values: Sequence[float] | None) -> str:
    return "unknown" if values is None else "/".join(f"{value:.1f}" for value in values)


def _verdict(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "n/a, scale not run"}[met]


def render_markdown(report: Mapping[str, Any], *, chart_name: str = CHART_NAME) -> str:
    """docs/benchmarks.md: the machine, the server, every figure and the targets."""
    machine, server, method = report["machine"], report["server"], report["method"]
    scales = report["scales"]
    out: list[str] = [
        "# Benchmarks: build cost, incremental cost and query latency",
        "",
        f"Generated by `{report['command']}` on {report['generated_at']} "
        f"(the whole run took {report['elapsed_seconds']:.0f} s). Regenerate with "
        "`make bench`; the raw figures are in `benchmarks.json`. Four environments built "
        "by one harness call against four calls: "
        "[`benchmark_environments.md`](benchmark_environments.md).",
        "",
    ]
    if method["quick"]:
        out += [
            "> **Quick mode**: each query ran only a few times; these figures prove the "
            "benchmark runs, they are not measurements.",
            "",
        ]
    out += [
        "## Machine and server",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"{machine['os']}; Python {machine['python']}, dbt-core {machine['dbt_core']}, "
        f"dbt-postgres {machine['dbt_postgres']}, psycopg {machine['psycopg']}.",
        f"- PostgreSQL {server['version']} ({server['where']}): "
        + ", ".join(f"{k} {v}" for k, v in server["settings"].items())
        + ".",
        "- Load average (1/5/15 min) before and after each scale: "
        + "; ".join(
            f"scale {e['scale']} {_loads(e['load_average']['before'])} → "
            f"{_loads(e['load_average']['after'])}"
            for e in scales
        )
        + " (the machine has "
        + f"{machine['cores']} cores; other work on it skews the figures).",
        f"- Each scale runs in its own new database; the sample ({method['environment']} "
        "environment, dbt target `default`) is loaded with COPY into `legacy.cache_entries`.",
        f"- Latency: {method['latency']}; {method['query_warmup_runs']} warm-up runs, then "
        f"{method['query_runs']} (the run count is in each row: a p99 over fewer than 100 "
        "runs is close to the maximum).",
        f"- Builds: {method['builds']}. The 1 %-changed run: {method['changed_entries']}.",
        "- Memory: the peak RSS of each dbt process (VmHWM, which the process reads itself); "
        + server["memory_note"].split(";")[0]
        + ", so it is not measured.",
        "",
        "## Targets (from issue 6)",
        "",
        "| target | scale | result | measured |",
        "|---|---:|---|---|",
    ]
    for target in report["targets"]:
        out.append(
            f"| {target['target']} | {target['scale']} | {_verdict(target['met'])} | "
            f"{target['measured']} |"
        )
    met = sum(1 for t in report["targets"] if t["met"] is True)
    missed = [t for t in report["targets"] if t["met"] is False]
    out += ["", f"{met} of {len(report['targets'])} targets met, {len(missed)} not met.", ""]
    out += _build_notes(scales)

    out += [
        "## Data per scale",
        "",
        "| scale | cache_entries rows | groups | memberships | distinct symbols | ETF pairs "
        "| sample load (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in scales:
        rows = entry["rows"]
        out.append(
            f"| {entry['scale']} | {rows['cache_entries']:,} | {rows['definition_groups']:,} | "
            f"{rows['group_memberships']:,} | {rows['symbols']:,} | {rows['etf_pairs']:,} | "
            f"{entry['sample']['load_seconds']:.1f} |"
        )

    out += [
        "",
        "## Builds",
        "",
        "Wall time of each step (dbt start-up and parsing included), dbt's own elapsed time, "
        "the execution time per layer (run_results.json; models run in parallel threads, so "
        "layers may overlap) and the dbt process's peak RSS. Incremental runs: the median run, "
        "every run's wall time beside it.",
        "",
        "| scale | step | wall (s) | dbt elapsed (s) | time per layer (s) | % of full build "
        "| peak RSS (MiB) |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    step_names = {
        "full_models_only": "full build, models only (`dbt seed` + `dbt run`)",
        "full_with_tests": "full build with tests (`dbt build`)",
        "incremental_no_change": "no-change incremental (`dbt run`)",
        "incremental_1pct": "1 %-changed incremental (`dbt run`)",
        "dbt_floor": "dbt's own floor (`dbt run` selecting no model)",
        "sql_floor": "SQL floor (one script, one transaction; median)",
    }
    for entry in scales:
        build = entry["build"]
        full = build["full_models_only"]["wall_seconds"]
        for step, title in step_names.items():
            if step not in build:
                continue  # a report written before the step was measured
            value = build[step]
            if step == "incremental_1pct":
                title += f", {value['changed_entries']:,} entries changed"
            runs = value.get("runs_wall_seconds", [])
            if len(runs) > 1:
                title += f"; median of {len(runs)}: " + " / ".join(f"{r:.1f}" for r in runs)
            layers = ", ".join(f"{k} {v:.1f}" for k, v in value.get("node_seconds", {}).items())
            elapsed = value.get("dbt_elapsed_seconds")
            rss = value.get("peak_rss_mib")
            out.append(
                f"| {entry['scale']} | {title} | {value['wall_seconds']:.1f} | "
                f"{'n/a' if elapsed is None else f'{elapsed:.1f}'} | {layers or 'n/a'} | "
                f"{100 * value['wall_seconds'] / full:.0f} % | "
                f"{'not measured (server)' if rss is None else f'{rss:.0f}'} |"
            )
    out += ["", "The SQL floor against the models' output (same groups and memberships?):", ""]
    out += ["| scale | groups (models / floor) | memberships (models / floor) | only in models "
            "| only in floor |", "|---:|---|---|---:|---:|"]  # fmt: skip
    for entry in scales:
        p = entry["build"]["sql_floor"]["parity"]
        out.append(
            f"| {entry['scale']} | {p['model_groups']:,} / {p['floor_groups']:,} | "
            f"{p['model_memberships']:,} / {p['floor_memberships']:,} | "
            f"{p['memberships_only_in_models']:,} | {p['memberships_only_in_floor']:,} |"
        )

    out += [
        "",
        "## Query latency",
        "",
        f"![latency vs scale]({chart_name})",
        "",
        "Milliseconds, client-side. *answer* is the size of the answer (rows, list items or "
        "count), the same in every layout when they agree.",
        "",
        "Point queries take little more than one round trip between client and server, so "
        "their figures move with the round trip itself. On a virtual machine that round trip "
        "depends on how idle the machine is: an idle vCPU sleeps, and waking the server and "
        "then the client adds tens of microseconds (on the 2-core machine of these figures, "
        "`select 1` took 0.10 ms with both cores idle and 0.02 ms with one core busy). "
        "The floor under every figure, a bare `select 1` on the same connection (p50 / p95): "
        + "; ".join(
            f"scale {entry['scale']} {_ms(entry['round_trip']['p50_ms'])} / "
            f"{_ms(entry['round_trip']['p95_ms'])} ms"
            for entry in scales
            if "round_trip" in entry
        )
        + ".",
        "",
    ]
    for question, title in QUESTIONS.items():
        out += [
            f"### {title[0].upper()}{title[1:]}",
            "",
            "| layout | scale | p50 | p95 | p99 | runs | answer |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for layout, layout_title in LAYOUTS.items():
            for entry in scales:
                timing = _latency(entry, question, layout)
                if timing is None:
                    continue
                out.append(
                    f"| {layout_title} | {entry['scale']} | {_ms(timing['p50_ms'])} | "
                    f"{_ms(timing['p95_ms'])} | {_ms(timing['p99_ms'])} | {timing['runs']} | "
                    f"{timing['answer_size']:,} |"
                )
        sample_timing = (
            next((t for t in scales[0]["latency"] if t["question"] == question), None)
            if scales
            else None
        )
        if sample_timing is not None:
            out += ["", "<details><summary>statements</summary>", ""]
            for t in scales[0]["latency"]:
                if t["question"] == question:
                    out += [f"- {t['layout']}: `{t['sql']}` with {t['params']}"]
            out += ["", "</details>"]
        out.append("")

    out += [
        "## Sizes on disk",
        "",
        "`pg_total_relation_size` (table, indexes and TOAST), MiB.",
        "",
    ]
    keys = sorted({key for entry in scales for key in entry["sizes"]})
    out.append("| relation | " + " | ".join(f"scale {e['scale']}" for e in scales) + " |")
    out.append("|---|" + "---:|" * len(scales))
    for key in keys:
        cells = [_mib(e["sizes"][key]) if key in e["sizes"] else "n/a" for e in scales]
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    out += [
        "",
        "The naive layout's figures come from a copy of the models' two tables into schema "
        f"`{NAIVE_SCHEMA}` with the spec's columns, a primary key on each table, the unique "
        "(group_id, symbol), the foreign key and one index on symbol, analyzed; nothing else.",
        "",
    ]
    return "\n".join(out)


def _build_notes(scales: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the build time goes at the largest scale, from the per-layer node times: which
    layers cost as much in an incremental run as in the full build."""
    if not scales:
        return []
    entry = max(scales, key=lambda e: e["scale"])
    build = entry["build"]
    notes = [f"Where the build time goes at scale {entry['scale']}:", ""]
    for step in ("full_models_only", "incremental_no_change", "incremental_1pct"):
        value = build[step]
        layers = value["node_seconds"]
        models = sum(v for k, v in layers.items() if k not in ("hooks", "seed", "tests", "other"))
        upstream = layers.get("staging", 0.0) + layers.get("intermediate", 0.0)
        outside = value["wall_seconds"] - value["dbt_elapsed_seconds"]
        notes.append(
            f"- {step.replace('_', ' ')} ({value['what']}): {value['wall_seconds']:.1f} s wall, "
            f"{outside:.1f} s of it dbt start-up and parsing; model time {models:.1f} s: "
            f"staging + intermediate {upstream:.1f} s ({100 * upstream / (models or 1):.0f} %), "
            f"the two tables {layers.get('core', 0.0):.1f} s, the analyst models "
            f"{layers.get('analytics', 0.0):.1f} s"
            + "".join(
                f", {layer} models {seconds:.1f} s"
                for layer, seconds in layers.items()
                if layer not in _LAYER_ORDER and layer != "other"
            )
            + " (parallel threads: layers overlap, so model time can exceed the wall time)."
        )
    full = build["full_models_only"]["node_seconds"]
    unchanged = build["incremental_no_change"]["node_seconds"]
    groups = {
        "staging + intermediate models": ("staging", "intermediate"),
        "the two tables": ("core",),
        "the analyst models": ("analytics",),
    }
    shares = []
    for title, members in groups.items():
        before = sum(full.get(layer, 0.0) for layer in members)
        after = sum(unchanged.get(layer, 0.0) for layer in members)
        if before > 0:
            shares.append(f"{title} {100 * after / before:.0f} %")
    materialized = build["incremental_no_change"]["invocations"][-1].get("materializations", {})
    kinds = "; ".join(
        f"{layer}: " + ", ".join(f"{count} {kind}" for kind, count in found.items())
        for layer, found in materialized.items()
    )
    notes += [
        "",
        "With nothing changed, each layer took this share of its full-build time: "
        + ", ".join(shares)
        + f". Materializations: {kinds}. A layer near 100 % is recomputed from the whole "
        "source on every run (a `table`, or an incremental model that replaces all of the "
        "environment's rows); only a model that diffs its input gets cheaper when little "
        "changed.",
        "",
    ]
    return notes + _fixed_cost_notes(scales)


def _fixed_cost_notes(scales: Sequence[Mapping[str, Any]]) -> list[str]:
    """What an incremental run costs whatever the data: dbt's own floor, and a no-change run
    at the smallest scale (a nearly empty database), as shares of the largest full build."""
    smallest = min(scales, key=lambda e: e["scale"])
    largest = max(scales, key=lambda e: e["scale"])
    floor = largest["build"].get("dbt_floor", {}).get("wall_seconds")
    if smallest is largest or floor is None:
        return []
    full = largest["build"]["full_models_only"]["wall_seconds"]
    small_run = smallest["build"]["incremental_no_change"]["wall_seconds"]
    large_run = largest["build"]["incremental_no_change"]["wall_seconds"]
    return [
        f"What a run costs whatever the data: dbt alone, selecting no model, takes {floor:.1f} s "
        f"({100 * floor / full:.0f} % of the scale-{largest['scale']} full build of {full:.1f} s); "
        f"a no-change run at scale {smallest['scale']}, where every model has almost nothing to "
        f"read, takes {small_run:.1f} s ({100 * small_run / full:.0f} %): dbt's start-up plus its "
        "bookkeeping around every model (compiling, introspection queries, grants, comments, "
        f"hooks). The no-change run at scale {largest['scale']} ({large_run:.1f} s) adds "
        f"{max(large_run - small_run, 0):.1f} s that grow with the data.",
        "",
    ]


# --- chart --------------------------------------------------------------------------------

_CHART_SERIES = (
    ("spec_sql", "relational (spec SQL, project indexes)", "tab:blue", "o-"),
    ("naive", "relational, naive layout", "tab:cyan", "s--"),
    ("analyst_model", "analyst models", "tab:green", "^-"),
    ("jsonb", "legacy JSONB", "tab:red", "D-"),
    ("jsonb_stock_metadata", "legacy JSONB via stock_metadata", "tab:orange", "v--"),
)


def render_chart(report: Mapping[str, Any], path: Path) -> None:
    """Median latency vs scale per question, every layout, log-log (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    scales = report["scales"]
    figure, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    for axis, (question, title) in zip(axes.flat, QUESTIONS.items(), strict=True):
        for layout, label, colour, style in _CHART_SERIES:
            points = [
                (entry["scale"], timing["p50_ms"])
                for entry in scales
                if (timing := _latency(entry, question, layout)) is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, style, color=colour, label=label)
        axis.set_title(title)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("sample scale (1 ≈ 24 ETFs, 16k memberships)")
        axis.set_ylabel("median latency (ms, client-side)")
        axis.grid(True, which="both", alpha=0.3)
        axis.set_xticks([entry["scale"] for entry in scales])
        axis.set_xticklabels([str(entry["scale"]) for entry in scales])
        axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(ticker.NullFormatter())
        axis.legend(fontsize=7)
    figure.suptitle(
        f"Query latency vs scale, PostgreSQL {report['server']['version']} "
        f"({report['generated_at'][:10]})"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
