"""Benchmark of issue 30's warm runner (``sprint59 sync``, validation/sync.py), in the same run
as the cold dbt runs:

- **a 1 %-change run through the warm runner**: sync running (a child process, as an
  operator runs it), settled; then the same 1 % change as the cold ``dbt run`` figure
  (bench_builds.change_one_percent) and the time of the build sync makes of it, as its own
  line reports it (``built run N in X s``: the in-process ``dbt build`` and the fingerprint's
  recording).  Its build leaves the tests out (``--exclude resource_type:test``), so it does
  the work of the cold ``dbt run`` it is compared with;
- **the sync latency**: a committed change (one new symbol in an ETF's holdings) until that
  membership is visible in ``group_memberships`` to another connection, p50 and p95 over
  ``SYNC_CHANGES`` changes, each made once sync has settled (an isolated change: a change
  committed during a build waits for that build too).

Not timed tests: the figures go to the report, beside the cold runs of the same run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_builds import change_one_percent
from validation.bench_method import DBT_SCHEMA, ENVIRONMENT, SOURCE_SCHEMA, TARGET, Progress
from validation.connection import PROJECT_ROOT
from validation.dbt import dbt_environment
from validation.errors import UserFacingError
from validation.timings import percentile

SYNC_INTERVAL = 0.5  # seconds between sync's passes in the benchmark
SYNC_CHANGES = 20  # changes timed for the latency (issue 30: at least 20)
SYNC_ETF = "SPY"  # the sample's ETF that the latency changes add a symbol to
WAIT_SECONDS = 900  # for any one line or row: generous, never part of a figure
BUILT = re.compile(r" built run \d+ in (\d+\.\d) s")
SETTLED = re.compile(r" nothing changed since ")

VISIBLE_SQL = """
select count(*) from {memberships} as m
inner join {groups} as g on g.id = m.group_id
where g.environment = %s and g.type = 'ETF' and g.name = %s and m.symbol = %s
"""


class _SyncChild:
    """sync as a child process, its lines read as they come."""

    def __init__(self, settings: Mapping[str, str], workspace: Path) -> None:
        env = dbt_environment(settings, terminal=False) | {
            "DBT_SCHEMA": DBT_SCHEMA,
            "DBT_TARGET_PATH": str(workspace / "sync-target"),
            "DBT_LOG_PATH": str(workspace / "logs" / "sync"),
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable, "-m", "validation", "sync", "--target", TARGET,
            "--interval", str(SYNC_INTERVAL),
            "--vars", json.dumps({"source_schema": SOURCE_SCHEMA}),
            "--exclude", "resource_type:test", "resource_type:unit_test",
        ]  # fmt: skip
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], after: int) -> re.Match[str]:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if found := pattern.search(line):
                    return found
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        raise UserFacingError(
            f"sync did not print {pattern.pattern!r} (exit {self.process.poll()}); its last "
            "lines: " + " | ".join(self.lines[-5:])
        )

    def settle(self) -> None:
        """Until a pass finds nothing changed (a build confirmed and recorded)."""
        self.wait_for(SETTLED, len(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=30)


def _visible(conn: psycopg.Connection[Any], symbol: str) -> bool:
    query = sql.SQL(VISIBLE_SQL).format(
        memberships=sql.Identifier(DBT_SCHEMA, "group_memberships"),
        groups=sql.Identifier(DBT_SCHEMA, "definition_groups"),
    )
    row = conn.execute(query, (ENVIRONMENT, SYNC_ETF, symbol)).fetchone()
    return bool(row and row[0])


def _add_holding(conn: psycopg.Connection[Any], symbol: str) -> None:
    """One new symbol at the end of the ETF's holdings, committed (autocommit), as the
    legacy application writes it (updated_at now)."""
    updated = conn.execute(
        sql.SQL(
            "update {} set value = jsonb_set(value, '{{holdings}}', "
            "(value -> 'holdings') || to_jsonb(%s::text)), updated_at = now() "
            "where type = 'etf_holdings' and key = %s and environment = %s"
        ).format(sql.Identifier(SOURCE_SCHEMA, "cache_entries")),
        (symbol, SYNC_ETF, ENVIRONMENT),
    ).rowcount
    if updated != 1:
        raise UserFacingError(f"the sample has no etf_holdings {SYNC_ETF} in {ENVIRONMENT}")


def _symbol(index: int) -> str:
    """ZQAA, ZQAB, …: symbols no sample ETF holds."""
    return "ZQ" + chr(65 + index // 26 % 26) + chr(65 + index % 26)


def measure_sync(
    settings: Mapping[str, str],
    conn: psycopg.Connection[Any],
    workspace: Path,
    *,
    runs: int,
    changes: int = SYNC_CHANGES,
    say: Progress,
) -> dict[str, Any]:
    """The warm runner's 1 %-change runs (``runs`` of them) and its commit-to-visible
    latency over ``changes`` changes (SYNC_CHANGES in a full run), on the built benchmark
    database."""
    child = _SyncChild(settings, workspace)
    try:
        say("  starting sync and letting it settle (its first builds are not timed) …")
        child.settle()
        warm: list[float] = []
        for _ in range(runs):
            seen = len(child.lines)
            change_one_percent(conn)
            warm.append(float(child.wait_for(BUILT, seen)[1]))
            child.settle()
        say(f"  1 %-change run through sync: {' / '.join(f'{s:.1f}' for s in warm)} s")
        latencies: list[float] = []
        with psycopg.connect(conn.info.dsn, autocommit=True) as reader:
            for index in range(changes):
                symbol = _symbol(index)
                _add_holding(conn, symbol)
                committed = time.perf_counter()
                deadline = committed + WAIT_SECONDS
                while not _visible(reader, symbol):
                    if time.perf_counter() > deadline or child.process.poll() is not None:
                        raise UserFacingError(
                            f"{symbol} never reached group_memberships; sync's last lines: "
                            + " | ".join(child.lines[-5:])
                        )
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - committed)
                child.settle()
        say(
            f"  sync latency commit → visible: p50 {percentile(latencies, 0.5):.2f} s, p95 "
            f"{percentile(latencies, 0.95):.2f} s over {len(latencies)} changes"
        )
    finally:
        child.stop()
    ordered = sorted(warm)
    return {
        "what": f"sprint59 sync --interval {SYNC_INTERVAL:g} (dbt build without tests, in "
        "process, warm manifest)",
        "warm_1pct_seconds": round(ordered[(len(ordered) - 1) // 2], 3),
        "warm_1pct_runs_seconds": warm,
        "latency_changes": len(latencies),
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_s": [round(s, 3) for s in latencies],
    }
