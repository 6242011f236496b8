"""The validation's result: each expectation's outcome, the verdict and its exit code, and the
result's two forms, the printed table for people and the JSON of ``validate --json`` for machines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from validation.validate_queries import OtherWriters

EXIT_PASS, EXIT_DATA_FAILURE, EXIT_TIMING_FAILURE = 0, 1, 3


@dataclass(frozen=True)
class CheckResult:
    """One expectation's outcome, in words."""

    suite: str
    check: str
    label: str
    observed: str
    expected: str
    success: bool
    message: str  # empty when it passed; otherwise what was found, readable on its own


@dataclass(frozen=True)
class ValidationReport:
    """One validation run: every expectation's result, the query timings, the verdict."""

    target: str
    environment: str
    expectations_path: Path
    server: str
    checks: tuple[CheckResult, ...]
    timings: pd.DataFrame
    import_seconds: float
    setup_seconds: float
    timing_seconds: float
    checkpoint_seconds: float
    checkpoint_budget_seconds: float
    docs_index: Path
    checkpoint_success: bool = True
    gx_was_loaded: bool = False  # great_expectations was already imported in this process
    timings_mode: str = "gate"
    load_average: tuple[float, float, float] | None = None  # of the machine, when timed
    other_writers: OtherWriters | None = None  # rows of the environment the migration did not write

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success)

    @property
    def data_failures(self) -> tuple[CheckResult, ...]:
        """Failed expectations about the data (everything but the query timings)."""
        return tuple(c for c in self.failures if c.suite != "query_timings")

    @property
    def timing_failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.failures if c.suite == "query_timings")

    @property
    def data_success(self) -> bool:
        ran_checks = bool(self.checks) and all(r.observed != "not run" for r in self.checks)
        return (
            ran_checks
            and not self.data_failures
            and (self.checkpoint_success or bool(self.timing_failures))
        )

    @property
    def success(self) -> bool:
        """The data passed, and the timings too unless they only report."""
        return self.data_success and (self.timings_mode != "gate" or not self.timing_failures)

    @property
    def exit_code(self) -> int:
        """0 passed; 1 a data expectation failed; 3 only a gated timing budget was missed."""
        if not self.data_success:
            return EXIT_DATA_FAILURE
        return EXIT_PASS if self.success else EXIT_TIMING_FAILURE

    def check(self, key: str) -> CheckResult:
        """The result of one expectation by its key (e.g. "orphan_memberships")."""
        for result in self.checks:
            if result.check == key:
                return result
        raise KeyError(key)


# --- the printed table ------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in (header, *rows):
        lines.append(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


# The checkpoint's own run time is Great Expectations' work (its metrics, Data Docs), not the
# migrated tables' speed, which the query timing budgets measure and gate.
CHECKPOINT_TARGET_ROLE = "advisory: it never fails the result"
CHECKPOINT_OVER = (
    "Great Expectations' own time, which a busy machine lengthens; the tables' speed is "
    "what the query timings above gate"
)


def format_report(report: ValidationReport) -> str:
    """A compact table (expectation, observed, expected, pass/fail), the timings and the figures."""
    lines = [
        f"Validation of {report.environment} (target {report.target}) on {report.server}, "
        f"expectations {report.expectations_path.name}",
        "",
    ]
    lines += _table(
        ("suite", "expectation", "observed", "expected", "result"),
        [
            (c.suite, c.label, c.observed, c.expected, "pass" if c.success else "FAIL")
            for c in report.checks
        ],
    )
    if report.failures:
        lines += ["", "Failures:"]
        lines += [f"  - {c.message}" for c in report.failures]
    lines += ["", *_timings_lines(report)]
    over = report.checkpoint_seconds > report.checkpoint_budget_seconds
    if report.success:
        verdict = "PASS"
    elif report.data_success:
        verdict = "FAIL (timings only: every data expectation was met)"
    else:
        verdict = "FAIL"
    if report.success and report.timing_failures:
        verdict += " (timing budgets missed, reported only)"
    lines += [
        "",
        f"import great_expectations: {report.import_seconds:.2f} s"
        f"{' (already loaded)' if report.gx_was_loaded else ''}; "
        f"checkpoint run: {report.checkpoint_seconds:.2f} s "
        f"(target < {report.checkpoint_budget_seconds:g} s, {CHECKPOINT_TARGET_ROLE}"
        f"{'; OVER: ' + CHECKPOINT_OVER if over else ''}); "
        f"GX setup {report.setup_seconds:.2f} s; query timing {report.timing_seconds:.2f} s",
        f"Data Docs: {report.docs_index}",
        *([report.other_writers.summary()] if report.other_writers else []),
        f"Result: {verdict} "
        f"({len(report.checks) - len(report.failures)} of {len(report.checks)} expectations met)",
    ]
    return "\n".join(lines)


def _timings_lines(report: ValidationReport) -> list[str]:
    if report.timings_mode == "off":
        return ["Query timings: not measured (--timings off)."]
    role = "gate" if report.timings_mode == "gate" else "are reported only"
    lines = [
        f"Query timings (psycopg, client side, after warm-up; budgets {role}, goals do not; a "
        "missed budget is measured again in fresh windows, each sample there the fastest of "
        "back-to-back runs, and the best window counts):",
    ]
    if report.load_average is not None:
        one, five, fifteen = report.load_average
        lines.append(
            f"  machine load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on "
            f"{os.cpu_count() or '?'} CPUs"
        )
    timing_rows = []
    for row in report.timings.itertuples(index=False):
        budget = "" if _missing(row.budget_p95_ms) else f"{row.budget_p95_ms:g}"
        goal, met = "", ""
        if not _missing(row.goal_p95_ms):
            goal = f"{row.goal_p95_ms:g}"
            met = "yes" if row.p95_ms <= row.goal_p95_ms else "no"
        timing_rows.append(
            (
                str(row.query),
                str(row.runs),
                str(row.windows) if row.repeats == 1 else f"{row.windows} (min of {row.repeats})",
                "" if row.kind == "total" else f"{row.rows:,}",
                f"{row.p50_ms:.2f}",
                f"{row.p95_ms:.2f}",
                budget,
                goal,
                met,
            )
        )
    lines += _table(
        ("query", "runs", "windows", "rows", "p50 ms", "p95 ms", "budget", "goal", "goal met"),
        timing_rows,
    )
    return lines


def report_as_dict(report: ValidationReport) -> dict[str, Any]:
    """The result for machines (``validate --json``): the verdict, its exit code, every
    expectation and every timing, as plain JSON values."""
    timings = [
        {key: (None if _missing(value) else value) for key, value in row.items()}
        for row in report.timings.to_dict("records")
    ]
    return {
        "target": report.target,
        "environment": report.environment,
        "server": report.server,
        "expectations_file": str(report.expectations_path),
        "success": report.success,
        "data_success": report.data_success,
        "exit_code": report.exit_code,
        "timings_mode": report.timings_mode,
        "load_average": list(report.load_average) if report.load_average else None,
        "checks": [
            {
                "suite": c.suite,
                "check": c.check,
                "label": c.label,
                "observed": c.observed,
                "expected": c.expected,
                "success": c.success,
                "message": c.message,
            }
            for c in report.checks
        ],
        "timings": timings if report.timings_mode != "off" else [],
        "seconds": {
            "import": report.import_seconds,
            "setup": report.setup_seconds,
            "query_timing": report.timing_seconds,
            "checkpoint": report.checkpoint_seconds,
        },
        "data_docs": str(report.docs_index),
        "other_writers": (
            {
                "groups": report.other_writers.groups,
                "memberships": report.other_writers.memberships,
                "examples": list(report.other_writers.examples),
            }
            if report.other_writers
            else None
        ),
    }


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN
