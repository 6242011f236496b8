"""The issue's targets for the benchmark (issue 6), each met, not met, or not evaluated because
its scale was not run, judged from the figures of a report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from validation.bench_history import SETTLED_RUNS, settled_share
from validation.bench_queries import LAYOUTS, QUESTIONS


def timing_of(entry: Mapping[str, Any], question: str, layout: str) -> dict[str, Any] | None:
    """One question's figures in one layout at one scale (None when it was not measured)."""
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
        if (timing := timing_of(entry, question, layout)) is not None
    ]
    return min(candidates, key=lambda timing: timing["p50_ms"])


def evaluate_targets(scales: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each met, not met, or not evaluated (its scale was not run)."""
    by_scale = {entry["scale"]: entry for entry in scales}
    targets: list[dict[str, Any]] = []

    def add(
        name: str, scale: int, check: Callable[[Mapping[str, Any]], tuple[bool | None, str]]
    ) -> None:
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
            old = timing_of(entry, q, lg)
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
        ours = timing_of(entry, "etf_holdings", "spec_sql")
        blob = timing_of(entry, "etf_holdings", "jsonb")
        assert ours is not None and blob is not None
        ratio = ours["p50_ms"] / blob["p50_ms"]
        return ratio <= 2, (
            f"{_times(ratio)} the blob ({ours['p50_ms']:.3g} ms vs {blob['p50_ms']:.3g} ms, p50)"
        )

    add("an ETF's holdings within 2x of the JSONB blob", 1, holdings_2x)

    def packed_at_most_blob(entry: Mapping[str, Any]) -> tuple[bool | None, str]:
        packed = timing_of(entry, "etf_holdings", "analyst_model")
        blob = timing_of(entry, "etf_holdings", "jsonb")
        join = timing_of(entry, "etf_holdings", "spec_sql")
        if packed is None or blob is None:
            return None, "packed row or JSONB row not measured in this run"
        measured = (
            f"packed {packed['p50_ms']:.3g} ms vs JSONB {blob['p50_ms']:.3g} ms"
            + ("" if join is None else f" vs the spec's join {join['p50_ms']:.3g} ms")
            + " (p50, same run)"
        )
        return packed["p50_ms"] <= blob["p50_ms"], measured

    # issue 30: the packed row (group_holdings) as fast as the blob, at every scale run
    for scale in sorted({1, 10, 100} | set(by_scale)):
        add(
            f"an ETF's holdings from its packed row at scale {scale}: p50 at or below the JSONB"
            " row's",
            scale,
            packed_at_most_blob,
        )

    def compat_within_2x(entry: Mapping[str, Any]) -> tuple[bool | None, str]:
        compat = timing_of(entry, "legacy_entry", "compat")
        legacy = timing_of(entry, "legacy_entry", "jsonb")
        if compat is None or legacy is None:
            return None, "the compatibility relation or cache_entries not measured in this run"
        ratio = compat["p50_ms"] / legacy["p50_ms"]
        return ratio <= 2, (
            f"{_times(ratio)} cache_entries' time ({compat['p50_ms']:.3g} ms vs "
            f"{legacy['p50_ms']:.3g} ms, p50, same run)"
        )

    # issue 31: the legacy application's own read, served by the compatibility relation
    for scale in sorted({1, 10, 100} | set(by_scale)):
        add(
            f"one legacy entry from the compatibility relation at scale {scale}: within 2x of"
            " cache_entries",
            scale,
            compat_within_2x,
        )

    for question, budget in (("etf_holdings", 5.0), ("symbol_etfs", 5.0), ("sector_counts", 20.0)):

        def within(
            entry: Mapping[str, Any], q: str = question, b: float = budget
        ) -> tuple[bool, str]:
            timing = timing_of(entry, q, "spec_sql")
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

    # issue 30: the warm runner (sprint59 sync, bench_sync.py) against the cold dbt run
    for scale, share in ((1, 1 / 4), (100, 1 / 3)):

        def warm_share(entry: Mapping[str, Any], limit: float = share) -> tuple[bool | None, str]:
            warm = entry.get("sync")
            if not warm:
                return None, "the warm runner was not measured in this run"
            cold = entry["build"]["incremental_1pct"]["wall_seconds"]
            took = warm["warm_1pct_seconds"]
            return took <= limit * cold, (
                f"{took / cold:.2f}x ({took:.1f} s through sync vs cold dbt run {cold:.1f} s)"
            )

        add(
            f"1 %-change run through the warm runner at most {share:.2g} of the cold dbt run's",
            scale,
            warm_share,
        )
    for scale, budget in ((1, 5.0), (100, 15.0)):

        def latency(entry: Mapping[str, Any], b: float = budget) -> tuple[bool | None, str]:
            warm = entry.get("sync")
            if not warm:
                return None, "the warm runner was not measured in this run"
            return warm["latency_p95_s"] < b, (
                f"p95 {warm['latency_p95_s']:.2f} s, p50 {warm['latency_p50_s']:.2f} s over "
                f"{warm['latency_changes']} changes (budget {b:g} s)"
            )

        add(f"sync latency commit → visible: p95 under {budget:g} s", scale, latency)

    def history_share(entry: Mapping[str, Any]) -> tuple[bool | None, str]:
        series = entry.get("history")
        if not series:
            return None, "history series not run at this scale (it runs at the largest)"
        runs = len(series["runs"])
        share = settled_share(series)
        return share <= 10, (
            f"adds {share:.1f} % (median of the last {min(SETTLED_RUNS, runs)} of {runs} "
            "1 %-changed runs; every run in the history section)"
        )

    add(
        "the history write adds ≤ 10 % to a 1 %-changed run's database time, after 20 runs",
        100,
        history_share,
    )

    def as_of_holdings(entry: Mapping[str, Any]) -> tuple[bool | None, str]:
        series = entry.get("history")
        timing = next(
            (t for t in (series or {}).get("latency", []) if t["question"] == "etf_holdings_as_of"),
            None,
        )
        if timing is None:
            return None, "history series not run at this scale (it runs at the largest)"
        return timing["p95_ms"] <= 5, f"p95 {timing['p95_ms']:.3g} ms (budget 5 ms)"

    add("an ETF's holdings as of a past moment: p95 within 5 ms", 100, as_of_holdings)
    return targets
