"""The benchmark runs end to end at a tiny scale.  Never a timed test: nothing here asserts on a
figure, only that every step ran and every output was written with every section."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.databases import PgServer

from validation import bench
from validation.bench_method import FULL_REPETITIONS, QUICK_REPETITIONS
from validation.errors import UserFacingError

# the harness's own behaviour, the same on every server: the PostgreSQL 15 suite runs it
pytestmark = pytest.mark.one_server

BUILD_STEPS = (
    "full_models_only",
    "full_with_tests",
    "incremental_no_change",
    "incremental_1pct",
    "dbt_floor",
    "sql_floor",
)


def test_benchmark_at_scale_1_writes_json_markdown_and_chart(
    pg_server: PgServer, fresh_database: dict[str, str], tmp_path: Path
) -> None:
    prefix = fresh_database["PGDATABASE"]
    messages: list[str] = []
    result = bench.run_benchmark(
        fresh_database,
        scales=(1,),
        out_dir=tmp_path,
        quick=True,
        database_prefix=prefix,
        progress=messages.append,
    )

    assert result.json_path == tmp_path / "benchmarks.json"
    report = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert report == json.loads(json.dumps(result.report))
    for section in ("generated_at", "machine", "server", "method", "scales", "targets"):
        assert section in report, section
    assert report["method"]["quick"] is True
    assert report["server"]["version"]

    (entry,) = report["scales"]
    assert entry["scale"] == 1
    for section in ("sample", "rows", "build", "memory", "latency", "sizes"):
        assert section in entry, section
    assert set(BUILD_STEPS) <= set(entry["build"])
    for step in BUILD_STEPS:
        assert entry["build"][step]["wall_seconds"] > 0, step
        assert step in entry["memory"]
    assert entry["build"]["incremental_1pct"]["changed_entries"] > 0
    # database time per layer, from the statements dbt logged (staging is its own layer)
    statements = entry["build"]["incremental_1pct"]["statement_seconds"]
    assert {"staging", "intermediate", "core", "history"} <= set(statements)
    assert statements["core"] > 0 and statements["history"] > 0, statements
    for step in BUILD_STEPS[:5]:
        assert entry["build"][step]["peak_rss_mib"] > 0, step
        if sys.platform == "linux":
            # read by dbt itself: wait4's figure would include the benchmark's own memory
            sources = {i["peak_rss_source"] for i in entry["build"][step]["invocations"]}
            assert sources == {"VmHWM"}, step

    # the hand-written floor builds the same rows as the models
    parity = entry["build"]["sql_floor"]["parity"]
    assert parity["memberships_only_in_models"] == parity["memberships_only_in_floor"] == 0
    assert parity["model_groups"] == parity["floor_groups"] > 0

    measured = {(t["question"], t["layout"]) for t in entry["latency"]}
    for question in set(bench.QUESTIONS) - {"legacy_entry"}:  # the spec's four questions
        assert (question, "spec_sql") in measured
        assert (question, "naive") in measured
        assert (question, "jsonb") in measured
    # issue 31: the legacy application's read of one entry, on the legacy table and on the
    # compatibility relation
    assert {("legacy_entry", "jsonb"), ("legacy_entry", "compat")} <= measured
    assert ("symbol_etfs", "jsonb_stock_metadata") in measured
    # issue 30: an ETF's holdings from its packed row, beside the JSONB row and the spec's join
    assert ("etf_holdings", "analyst_model") in measured
    for timing in entry["latency"]:
        assert timing["runs"] >= 1
        assert {"p50_ms", "p95_ms", "p99_ms"} <= set(timing)
    # every layout gives the same answer to the same question
    answers: dict[str, set[int]] = {}
    for timing in entry["latency"]:
        answers.setdefault(timing["question"], set()).add(timing["answer_size"])
    assert all(len(sizes) == 1 for sizes in answers.values()), answers

    for relation in ("cache_entries", "definition_groups", "group_memberships", "database"):
        assert entry["sizes"][relation] > 0

    # the history series runs at the largest scale benchmarked: here 1 run, then the as-of
    # questions at the moment after it
    history = entry["history"]
    (run,) = history["runs"]
    assert run["changed_entries"] > 0 and run["history_seconds"] > 0
    assert 0 < run["history_seconds"] < run["database_seconds"]
    # (at scale 1 the 1 % change touches no member list: every 100th entry is a stock's)
    assert history["rows"]["membership_periods"] > history["rows"]["closed_membership_periods"]
    as_of = {t["question"]: t for t in history["latency"]}
    assert set(as_of) == {"etf_holdings_as_of", "symbol_groups_as_of"}
    assert as_of["etf_holdings_as_of"]["answer_size"] > 0
    assert as_of["symbol_groups_as_of"]["answer_size"] > 0

    # issue 30: the warm runner (sprint59 sync) -- its 1 %-change runs, and the latency from a
    # committed change to the change visible (over 20 changes in a full run, 3 in a quick one)
    warm = entry["sync"]
    assert len(warm["warm_1pct_runs_seconds"]) >= 1 and warm["warm_1pct_seconds"] > 0
    assert warm["latency_changes"] == len(warm["latency_s"]) == QUICK_REPETITIONS.sync_changes
    assert FULL_REPETITIONS.sync_changes >= 20
    assert warm["latency_p95_s"] >= warm["latency_p50_s"] > 0

    # the packed row's target at scales 1, 10 and 100; the warm runner's four at 1 and 100;
    # the compatibility relation's at 1, 10 and 100
    assert len(report["targets"]) == 24
    (compat,) = [t for t in report["targets"] if t["scale"] == 1 and "compatibility" in t["target"]]
    assert compat["met"] is not None, compat
    (packed,) = [t for t in report["targets"] if t["scale"] == 1 and "packed row" in t["target"]]
    assert "packed" in packed["measured"] and "JSONB" in packed["measured"]
    evaluated = [t for t in report["targets"] if t["scale"] == 1]
    assert evaluated and all(t["met"] in (True, False) for t in evaluated)
    assert all(t["met"] is None for t in report["targets"] if t["scale"] != 1)

    markdown = result.markdown_path.read_text(encoding="utf-8")
    for heading in (
        "## Machine and server", "## Targets", "## Builds", "## Query latency",
        "## Membership history (scale 1)",
    ):  # fmt: skip
        assert heading in markdown
    assert "Quick mode" in markdown
    assert f"PostgreSQL {report['server']['version']}" in markdown
    assert result.chart_path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert any("scale 1:" in message for message in messages)

    # the benchmark dropped its own database
    with pg_server.connect() as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname = %s", (f"{prefix}_s1",)
        ).fetchone()
    assert left == (0,)


@pytest.mark.parametrize("text", ["", "0", "1,x", "2000"])
def test_invalid_scales_are_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(UserFacingError, match="Invalid --scales"):
        bench.parse_scales(text)


def test_scales_parse_in_order_without_repeats() -> None:
    assert bench.parse_scales("1, 10,100,10") == (1, 10, 100)


def test_a_repeated_incremental_run_reports_its_median_run_with_every_run_beside_it() -> None:
    runs = [
        {"wall_seconds": 9.0, "node_seconds": {"core": 3.0}},  # right after the build
        {"wall_seconds": 6.0, "node_seconds": {"core": 1.0}},
        {"wall_seconds": 7.0, "node_seconds": {"core": 2.0}},
    ]

    median = bench._median_run(runs)

    assert median["wall_seconds"] == 7.0
    assert median["node_seconds"] == {"core": 2.0}  # the layers of that same run
    assert median["runs_wall_seconds"] == [9.0, 6.0, 7.0]  # in the order they ran


def test_a_database_of_a_benchmark_name_that_the_harness_did_not_create_is_never_dropped(
    pg_server: PgServer, fresh_database: dict[str, str]
) -> None:
    """bench recreates its bench_s<N> databases: on a user's server a database of that name
    may be theirs.  Only one the harness created (its COMMENT says so) is dropped."""
    from validation import ownership

    users = fresh_database["PGDATABASE"]  # created by the test, as a user would: no mark
    with pytest.raises(UserFacingError, match="was not created by this harness"):
        ownership.recreate_owned_database(fresh_database, users, "benchmark")
    ownership.drop_owned_database(fresh_database, users)
    assert ownership.database_state(fresh_database, users) == "foreign"

    ours = f"{users}_ours"
    ownership.recreate_owned_database(fresh_database, ours, "benchmark")
    assert ownership.database_state(fresh_database, ours) == "owned"
    ownership.recreate_owned_database(fresh_database, ours, "benchmark")  # replaced: fine
    ownership.drop_owned_database(fresh_database, ours)
    assert ownership.database_state(fresh_database, ours) == "missing"


def test_the_four_environments_report_says_what_one_call_saves() -> None:
    from validation.bench_environments import render

    text = render(
        {
            "generated_at": "2026-11-27T12:00:00+00:00",
            "command": "python -m validation bench-environments --runs 2 --scale 1",
            "one_call_seconds": [60.0, 62.0],
            "four_calls_seconds": [74.0, 76.0],
            "one_call_median": 61.0,
            "four_calls_median": 75.0,
        }
    )
    one_call = "| `build --target default,test,uat,prod` (one process) | 61.0 s | 60.0 / 62.0 s |"
    assert one_call in text
    assert "| saved by one call | 14.0 s (19%) | |" in text
