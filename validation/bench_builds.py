"""Running the builds: each dbt command as a child process of its own (wall time, dbt's own time
per layer, how the models are materialized, peak memory), the median of repeated runs, and the
changes made to the benchmark database between builds (a fresh start, 1 % of the entries changed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_method import (
    CHANGE_EVERY,
    CHANGED_AT,
    DBT_SCHEMA,
    ENVIRONMENT,
    MAPPED_TYPES,
    SOURCE_SCHEMA,
    TARGET,
)
from validation.connection import PROJECT_ROOT
from validation.dbt import dbt_environment
from validation.errors import UserFacingError


class DbtRunner:
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
        log_dir = self.workspace / "logs" / f"{self.count:02d}-{command}"  # dbt.log, JSON lines
        argv = [
            *_dbt_with_peak_memory(peak_file), command,
            "--project-dir", str(PROJECT_ROOT),
            "--profiles-dir", str(self.workspace),
            "--target", TARGET,
            "--target-path", str(target_path),
            "--log-path", str(log_dir),
            "--log-format-file", "json",
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
            "statement_seconds": _statement_seconds(log_dir / "dbt.log", manifest),
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
LAYER_ORDER = ("hooks", "seed", "staging", "intermediate", "core", "analytics", "tests")


def _node_seconds(results: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, float]:
    """Execution time per layer: hooks, seed, the model folders (staging, intermediate, core,
    analytics, ...) and tests (data and unit tests)."""
    totals: dict[str, float] = {}
    for result in results.get("results", []):
        layer = _layer_of(result.get("unique_id", ""), manifest)
        totals[layer] = totals.get(layer, 0.0) + float(result.get("execution_time") or 0.0)
    return {layer: round(totals[layer], 3) for layer in sorted(totals, key=_layer_rank)}


def _statement_seconds(log: Path, manifest: Mapping[str, Any]) -> dict[str, float]:
    """The database time of one invocation per layer: the elapsed time dbt logged for each SQL
    statement (its SQLQueryStatus events, in the invocation's own JSON log file), summed by
    the layer of the node that ran it; statements outside any node (dbt's own catalog and
    schema queries) are ``dbt``. Unlike node_seconds it leaves out dbt's Python work."""
    totals: dict[str, float] = {}
    try:
        with log.open(encoding="utf-8") as lines:
            for line in lines:
                if '"SQLQueryStatus"' not in line:
                    continue
                data = json.loads(line).get("data", {})
                unique_id = data.get("node_info", {}).get("unique_id", "")
                layer = _layer_of(unique_id, manifest) if unique_id else "dbt"
                totals[layer] = totals.get(layer, 0.0) + float(data.get("elapsed") or 0.0)
    except (OSError, ValueError):
        return {}
    return {layer: round(totals[layer], 3) for layer in sorted(totals, key=_layer_rank)}


def _layer_of(unique_id: str, manifest: Mapping[str, Any]) -> str:
    """A node's layer: the folder of a model (staging, intermediate, core, ...), or its kind."""
    kind = unique_id.split(".", 1)[0]
    if kind != "model":
        return _KIND_LAYER.get(kind, "other")
    return _model_layer(manifest.get("nodes", {}).get(unique_id, {}).get("fqn", []))


def _model_layer(fqn: Sequence[str]) -> str:
    """staging, intermediate, or the mart folder (core, analytics, history, operations)."""
    if len(fqn) >= 4 and fqn[1] == "marts":  # [project, "marts", folder, model]
        return str(fqn[2])
    return str(fqn[1]) if len(fqn) >= 3 else "models"


def _layer_rank(layer: str) -> tuple[int, str]:
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer)


def _materializations(manifest: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """How the models of each folder are materialized, e.g. {"intermediate": {"table": 6}}."""
    found: dict[str, dict[str, int]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        layer = _model_layer(node.get("fqn", []))
        kind = str(node.get("config", {}).get("materialized", "?"))
        found.setdefault(layer, {})
        found[layer][kind] = found[layer].get(kind, 0) + 1
    return found


def combine(label: str, invocations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One step's figures from its dbt invocations: times summed, the largest peak memory."""

    def summed(figure: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for invocation in invocations:
            for layer, seconds in invocation.get(figure, {}).items():
                totals[layer] = round(totals.get(layer, 0.0) + seconds, 3)
        return totals

    return {
        "what": label,
        "wall_seconds": round(sum(i["wall_seconds"] for i in invocations), 3),
        "dbt_elapsed_seconds": round(sum(i["dbt_elapsed_seconds"] for i in invocations), 3),
        "node_seconds": summed("node_seconds"),
        "statement_seconds": summed("statement_seconds"),
        "peak_rss_mib": max(i["peak_rss_mib"] for i in invocations),
        "memory_of": "the dbt process (max RSS); the server's memory is not measured",
        "invocations": list(invocations),
    }


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (a real run, so its per-layer times stay consistent),
    with every run's wall time beside it."""
    ordered = sorted(runs, key=lambda run: run["wall_seconds"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["runs_wall_seconds"] = [run["wall_seconds"] for run in runs]
    return median


def runs_line(step: Mapping[str, Any]) -> str:
    runs = step.get("runs_wall_seconds", [step["wall_seconds"]])
    listed = " / ".join(f"{seconds:.1f}" for seconds in runs)
    return f"  {step['wall_seconds']:.1f} s" + (
        f" (median; runs {listed} s)" if len(runs) > 1 else ""
    )


# --- between builds -----------------------------------------------------------------------


def drop_dbt_relations(conn: psycopg.Connection[Any]) -> None:
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


def change_one_percent(conn: psycopg.Connection[Any]) -> int:
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
