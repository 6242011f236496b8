"""Benchmark of issue 30's target: a harness build that finds nothing changed
(validation/fingerprint.py) against ``dbt --version`` in the same run, each a child process,
alternated, the median of several.

    python -m validation.bench_skip [--runs 7] [--target default] [-- dbt options]

The database is the one the PG* variables name (or the embedded server's); its target must
have been built twice by the harness with the same options (the second build records the
fingerprint), so that every timed harness run is a skip.  Prints one line per figure and a
JSON line for machines; writes no file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from validation.connection import PROJECT_ROOT
from validation.dbt import dbt_environment, dbt_executable
from validation.errors import UserFacingError


def _timed(command: Sequence[str], env: Mapping[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    ran = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if ran.returncode != 0:
        raise UserFacingError(f"{' '.join(command)} failed: {(ran.stdout + ran.stderr)[-500:]}")
    return seconds, ran.stdout


def measure(
    settings: Mapping[str, str], *, target: str, dbt_args: Sequence[str], runs: int
) -> dict[str, Any]:
    """Median wall seconds of a skipped harness build and of ``dbt --version``."""
    env = dbt_environment(settings, terminal=False)
    harness = [sys.executable, "-m", "validation", "build", "--target", target, *dbt_args]
    skipped: list[float] = []
    version: list[float] = []
    for _ in range(runs):
        seconds, output = _timed(harness, env)
        if "nothing changed since" not in output:
            raise UserFacingError(
                f"the harness build of {target} was not skipped (build it twice with the same "
                f"options first): {output[-300:]}"
            )
        skipped.append(seconds)
        version.append(_timed([dbt_executable(), "--version"], env)[0])
    load = os.getloadavg()
    return {
        "target": target,
        "runs": runs,
        "skipped_build_median_s": round(statistics.median(skipped), 3),
        "dbt_version_median_s": round(statistics.median(version), 3),
        "skipped_build_s": [round(s, 3) for s in skipped],
        "dbt_version_s": [round(s, 3) for s in version],
        "load_average": [round(x, 2) for x in load],
    }


def main(argv: Sequence[str] | None = None) -> int:
    from validation.cli import resolve_settings

    parser = argparse.ArgumentParser(prog="python -m validation.bench_skip")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", default="default")
    args, dbt_args = parser.parse_known_args(argv)
    dbt_args = dbt_args[1:] if dbt_args[:1] == ["--"] else dbt_args
    try:
        result = measure(
            resolve_settings(start_embedded=False),
            target=args.target,
            dbt_args=dbt_args,
            runs=args.runs,
        )
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"skipped harness build: {result['skipped_build_median_s']:.3f} s; dbt --version: "
        f"{result['dbt_version_median_s']:.3f} s (medians of {args.runs}; load average "
        f"{result['load_average'][0]})"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
