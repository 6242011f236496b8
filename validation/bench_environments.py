"""``python -m validation bench-environments``: four environments built by one harness call
(``build --target default,test,uat,prod``: dbt imported once) against four separate calls.

Both are timed as a user runs them, whole processes from start to exit, on the same database
with the same data: the four environments of the sample are loaded once, and before every
measured build the dbt relations are dropped so that each build starts from nothing.  The
two ways alternate, so a machine that gets busier affects both alike.  Writes
``docs/benchmark_environments.json`` and ``docs/benchmark_environments.md``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from validation import sample, targets
from validation.connection import PROJECT_ROOT, connect
from validation.dbt import dbt_environment
from validation.errors import UserFacingError
from validation.ownership import drop_owned_database, recreate_owned_database
from validation.timings import load_average

DATABASE = "bench_environments"
JSON_NAME = "benchmark_environments.json"
MARKDOWN_NAME = "benchmark_environments.md"
SOURCE_SCHEMA, OUTPUT_SCHEMA = "legacy", "bench"


def _drop_built_schemas(settings: Mapping[str, str]) -> None:
    """Everything a build made (all in the OUTPUT_SCHEMA* schemas), so the next starts afresh."""
    from psycopg import sql

    with connect(settings, autocommit=True) as conn:
        for (schema,) in conn.execute(
            "select nspname from pg_namespace where nspname = %s or nspname like %s",
            (OUTPUT_SCHEMA, OUTPUT_SCHEMA + "\\_%"),
        ).fetchall():
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def _timed_builds(
    settings: Mapping[str, str], target_lists: list[str], work: Path
) -> tuple[float, list[float]]:
    """Run ``build --target T`` for each entry, one process each; (total wall s, per call)."""
    env = dbt_environment(settings) | {"DBT_TARGET_PATH": str(work / "target")}
    env |= {"DBT_LOG_PATH": str(work / "logs"), "DBT_SCHEMA": OUTPUT_SCHEMA}
    source = json.dumps({"source_schema": SOURCE_SCHEMA})
    harness = [sys.executable, "-m", "validation", "build", "--vars", source, "--target"]
    calls = []
    for target_list in target_lists:
        started = time.perf_counter()
        completed = subprocess.run(
            [*harness, target_list],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        calls.append(time.perf_counter() - started)
        if completed.returncode != 0:
            raise UserFacingError(
                f"build --target {target_list} failed in the benchmark:\n"
                + (completed.stdout + completed.stderr)[-2000:]
            )
    return sum(calls), calls


def run(
    settings: Mapping[str, str],
    *,
    out_dir: Path,
    runs: int = 3,
    scale: int = 1,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure and write the report; returns it."""
    database = {**settings, "PGDATABASE": DATABASE}
    load_before = load_average()
    recreate_owned_database(settings, DATABASE, "benchmark")
    scratch = tempfile.TemporaryDirectory(prefix="bench_environments_")
    work = Path(scratch.name)  # dbt's artifacts and logs of the measured builds
    try:
        with connect(database) as conn:
            progress(f"loading the sample (scale {scale}) into the four environments")
            sample.load_sample(
                conn, schema=SOURCE_SCHEMA, environments=targets.ENVIRONMENTS, scale=scale
            )
        one_call = ",".join(targets.TARGETS)
        four_calls = list(targets.TARGETS)
        figures: dict[str, list[float]] = {"one_call": [], "four_calls": []}
        per_call: list[list[float]] = []
        for run_index in range(runs):
            order = ("one_call", "four_calls")
            for way in order if run_index % 2 == 0 else reversed(order):
                _drop_built_schemas(database)
                progress(f"run {run_index + 1} of {runs}: {way.replace('_', ' ')}")
                total, calls = _timed_builds(
                    database, [one_call] if way == "one_call" else four_calls, work
                )
                figures[way].append(total)
                if way == "four_calls":
                    per_call.append(calls)
    finally:
        drop_owned_database(settings, DATABASE)
        scratch.cleanup()
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m validation bench-environments --runs {runs} --scale {scale}",
        "scale": scale,
        "runs": runs,
        "one_call_seconds": figures["one_call"],
        "four_calls_seconds": figures["four_calls"],
        "four_calls_per_call_seconds": per_call,
        "load_average_before": list(load_before) if load_before else None,
        "load_average_after": list(load) if (load := load_average()) else None,
        "cpus": os.cpu_count(),
        "one_call_median": statistics.median(figures["one_call"]),
        "four_calls_median": statistics.median(figures["four_calls"]),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JSON_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / MARKDOWN_NAME).write_text(render(report), encoding="utf-8")
    return report


def _loads(values: Any) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "unknown"


def render(report: Mapping[str, Any]) -> str:
    one, four = report["one_call_median"], report["four_calls_median"]
    listed = " / ".join
    return "\n".join(
        [
            "# Four environments: one harness call against four",
            "",
            f"Generated {report['generated_at']} by `{report['command']}` "
            "(`make bench` runs it after the main benchmark). Each figure is a whole command, "
            f"from start to exit, building {', '.join(targets.ENVIRONMENTS)} of the sample from "
            "nothing in one database; the two ways alternate.",
            "",
            "| how | wall time (median) | runs |",
            "|---|---|---|",
            f"| `build --target default,test,uat,prod` (one process) | {one:.1f} s | "
            f"{listed(f'{s:.1f}' for s in report['one_call_seconds'])} s |",
            f"| `build --target X`, four times | {four:.1f} s | "
            f"{listed(f'{s:.1f}' for s in report['four_calls_seconds'])} s |",
            f"| saved by one call | {four - one:.1f} s ({(four - one) / four:.0%}) | |",
            "",
            "One call imports dbt once; four calls pay Python's and dbt's start-up four times.",
            "",
            f"Machine: {report.get('cpus', '?')} CPUs; load average (1 / 5 / 15 min) "
            f"{_loads(report.get('load_average_before'))} before the runs and "
            f"{_loads(report.get('load_average_after'))} after: compare the two ways with "
            "each other, not with figures of another day.",
            "",
        ]
    )
