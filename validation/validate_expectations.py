"""The expectations files: what each environment's tables must hold and how fast the queries must
answer (``validation/expectations/<target>.yml``), read and checked into an ``ExpectationsFile``.
A file with a missing or unknown key, or a value of the wrong shape, is refused with the key and
the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from validation.errors import UserFacingError

EXPECTATIONS_DIR = Path(__file__).resolve().parent / "expectations"
ANALYST_QUERIES = ("etf_holdings", "etf_holdings_spec_join", "symbol_etfs", "sector_filter")
# A figure an expectations file may leave out, and the figure it then takes: files written
# before etf_holdings read the packed row (group_holdings) give the spec's join the budget
# they gave the ETF holdings query, which was that join.
DEFAULTS_FROM = {"etf_holdings_spec_join": "etf_holdings"}
VALIDATION_TOTAL = "validation_queries"
TIMING_KEYS = (
    "etf_name",
    "symbol",
    "analyst",
    "validation",
    "budgets_p95_ms",
    "goals_p95_ms",
    "checkpoint_seconds",
)


@dataclass(frozen=True)
class Band:
    """An accepted range for a figure, and how to say it."""

    minimum: float
    maximum: float
    text: str


@dataclass(frozen=True)
class ExpectationsFile:
    """One environment's versioned expectations (validation/expectations/<target>.yml)."""

    path: Path
    environment: str
    counts: Mapping[str, Band]
    etf_name: str
    symbol: str
    analyst_warmup: int
    analyst_runs: int
    analyst_windows: int
    validation_warmup: int
    validation_runs: int
    budgets_ms: Mapping[str, float]
    goals_ms: Mapping[str, float]
    checkpoint_seconds: float


COUNT_LABELS: Mapping[str, str] = {
    "etf_groups": "ETF groups",
    "theme_groups": "THEME groups",
    "sector_groups": "SECTOR groups",
    "distinct_symbols": "distinct symbols (all groups)",
    "etf_theme_memberships": "ETF + THEME memberships",
}
QUERY_LABELS: Mapping[str, str] = {
    "etf_holdings": "ETF holdings by name (packed row)",
    "etf_holdings_spec_join": "ETF holdings, the spec's join",
    "symbol_etfs": "a symbol's ETFs",
    "sector_filter": "sector filter",
    VALIDATION_TOTAL: "all validation queries",
}


def default_expectations_path(target: str) -> Path:
    return EXPECTATIONS_DIR / f"{target}.yml"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserFacingError(
            f"{where} must be a number, not {value!r}; fix the expectations file."
        )
    return float(value)


def _count_band(value: Any, where: str) -> Band:
    """An exact count (24), {about: N, tolerance: 0.03} or {min: A, max: B}."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Band(value, value, f"exactly {value:,}")
    if isinstance(value, Mapping) and set(value) == {"about", "tolerance"}:
        about = _number(value["about"], f"{where}.about")
        tolerance = _number(value["tolerance"], f"{where}.tolerance")
        if not 0 <= tolerance < 1:
            raise UserFacingError(
                f"{where}.tolerance must be a fraction in [0, 1); fix the expectations file."
            )
        low, high = round(about * (1 - tolerance)), round(about * (1 + tolerance))
        return Band(low, high, f"{low:,} to {high:,} ({about:,.0f} ± {tolerance:.0%})")
    if isinstance(value, Mapping) and set(value) == {"min", "max"}:
        low, high = _number(value["min"], f"{where}.min"), _number(value["max"], f"{where}.max")
        if low > high:
            raise UserFacingError(f"{where}: min is above max; fix the expectations file.")
        return Band(low, high, f"{low:,.0f} to {high:,.0f}")
    raise UserFacingError(
        f"{where} must be a count, {{about: N, tolerance: F}} or {{min: A, max: B}}; "
        "fix the expectations file."
    )


def _section(data: Mapping[str, Any], key: str, where: str, keys: Iterable[str]) -> dict[str, Any]:
    section = data.get(key)
    wanted = set(keys)
    optional = wanted & set(DEFAULTS_FROM)
    if not isinstance(section, Mapping) or not wanted - optional <= set(section) <= wanted:
        raise UserFacingError(
            f"{where}{key} must give exactly {', '.join(sorted(wanted))}; "
            "fix the expectations file."
        )
    found = dict(section)
    for name in optional - set(found):
        found[name] = found[DEFAULTS_FROM[name]]
    return found


def _runs(value: Any, where: str, *, windows: bool = False) -> tuple[int, int, int]:
    """(warmup, runs, windows) of a timing section; ``windows`` only where it is allowed."""
    keys = {"warmup", "runs"}
    if (
        not isinstance(value, Mapping)
        or not keys <= set(value) <= (keys | {"windows"} if windows else keys)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
        or value["warmup"] < 0
        or value["runs"] < 2
        or value.get("windows", 1) < 1
    ):
        shape = "{warmup: N >= 0, runs: N >= 2" + (", windows: N >= 1}" if windows else "}")
        raise UserFacingError(f"{where} must be {shape}; fix the expectations file.")
    return value["warmup"], value["runs"], value.get("windows", 1)


def load_expectations(path: Path, environment: str) -> ExpectationsFile:
    """Read and check an expectations file; it must be written for `environment`."""
    if not path.is_file():
        raise UserFacingError(
            f"No expectations file at {path}; create it (see validation/expectations/*.yml)."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserFacingError(f"{path} is not valid YAML ({exc}); fix the file.") from exc
    where = f"{path.name}: "
    top = {"version", "environment", "counts", "timings"}
    if not isinstance(data, Mapping) or set(data) != top:
        raise UserFacingError(
            f"{where}the file must have exactly {', '.join(sorted(top))}; "
            "fix the expectations file."
        )
    if data["version"] != 1:
        raise UserFacingError(f"{where}version must be 1; fix the expectations file.")
    if data["environment"] != environment:
        raise UserFacingError(
            f"{path} describes environment {data['environment']!r}, not {environment}; "
            "pass the expectations file of this target."
        )
    counts = _section(data, "counts", where, COUNT_LABELS)
    timings = _section(
        data,
        "timings",
        where,
        TIMING_KEYS,
    )
    raw_budgets = _section(
        timings, "budgets_p95_ms", f"{where}timings.", (*ANALYST_QUERIES, VALIDATION_TOTAL)
    )
    raw_goals = _section(timings, "goals_p95_ms", f"{where}timings.", ANALYST_QUERIES)
    for key in ("etf_name", "symbol"):
        if not isinstance(timings[key], str) or not timings[key]:
            raise UserFacingError(f"{where}timings.{key} must be a non-empty string.")
    analyst_warmup, analyst_runs, analyst_windows = _runs(
        timings["analyst"], f"{where}timings.analyst", windows=True
    )
    validation_warmup, validation_runs, _ = _runs(
        timings["validation"], f"{where}timings.validation"
    )
    return ExpectationsFile(
        path=path,
        environment=environment,
        counts={key: _count_band(counts[key], f"{where}counts.{key}") for key in COUNT_LABELS},
        etf_name=timings["etf_name"],
        symbol=timings["symbol"],
        analyst_warmup=analyst_warmup,
        analyst_runs=analyst_runs,
        analyst_windows=analyst_windows,
        validation_warmup=validation_warmup,
        validation_runs=validation_runs,
        budgets_ms={
            k: _number(v, f"{where}timings.budgets_p95_ms.{k}") for k, v in raw_budgets.items()
        },
        goals_ms={k: _number(v, f"{where}timings.goals_p95_ms.{k}") for k, v in raw_goals.items()},
        checkpoint_seconds=_number(timings["checkpoint_seconds"], f"{where}checkpoint_seconds"),
    )
