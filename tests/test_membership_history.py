"""Membership history: what the two tables held at each run, answered afterwards by date."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from support.databases import PgServer
from support.dbt_project import DbtProject
from support.history import (
    HistoryViolation,
    check_history,
    history_as_of,
    last_run_time,
    tables_state,
)
from support.legacy_cache import LegacyCache, small_cache

from validation import operations
from validation.cli import main


def _reweight_qqq(cache: LegacyCache) -> None:
    cache.update(
        "etf_holdings", "QQQ",
        {"holdings": [{"symbol": "MSFT", "weight": 0.2}, {"symbol": "AAPL", "weight": 0.12},
                      {"ticker": "NVDA", "weight_pct": 9.5}]},
    )  # fmt: skip


def _rebalance_spy(cache: LegacyCache) -> None:
    cache.replace("etf_holdings", "SPY", {"holdings": ["AAPL", "MSFT", "NVDA", "AMD", "CVX"]})


def _delete_theme(cache: LegacyCache) -> None:
    cache.remove("theme_definition", "crypto_miners")


def _add_etf(cache: LegacyCache) -> None:
    cache.add("etf_holdings", "SMH", "VanEck Semiconductor ETF", {"holdings": ["NVDA", "AMD"]})


def _move_stock_sector(cache: LegacyCache) -> None:
    cache.replace(
        "stock_metadata", "XOM", {"sector": "Information Technology", "industry": "Software"}
    )


def _readd_theme(cache: LegacyCache) -> None:
    cache.add(
        "theme_definition", "crypto_miners", "Bitcoin & Cryptocurrency Miners",
        {"description": "Bitcoin miners", "symbols": ["MARA", "CLSK"]},
    )  # fmt: skip


# (what the step changes, build arguments)
STEPS: list[tuple[Callable[[LegacyCache], None], tuple[str, ...]]] = [
    (_reweight_qqq, ()),
    (_rebalance_spy, ()),
    (_delete_theme, ()),
    (_add_etf, ("--full-refresh",)),
    (_move_stock_sector, ()),
    (_readd_theme, ("--full-refresh",)),
]


# Every model and seed, the singular tests, and the history's own data tests (periods never
# overlap, one open row per key): not the other models' column tests, which other tests run.
WITH_HISTORY_TESTS = (
    "--select", "resource_type:model", "resource_type:seed", "test_type:singular",
    "test_type:generic,path:models/marts/history",
    "--indirect-selection", "empty",
)  # fmt: skip


def test_history_as_of_each_run_equals_what_the_tables_held_then(dbt_project: DbtProject):
    conn = dbt_project.connect()
    cache = small_cache(LegacyCache(conn).create())
    # with the history's own data tests in every run, --full-refresh ones included
    result = dbt_project.build(args=WITH_HISTORY_TESTS)
    generic = [
        r.node for r in result.result.results if getattr(r.node, "test_metadata", None) is not None
    ]
    assert {n.original_file_path for n in generic} == {"models/marts/history/_history.yml"}
    assert any(n.test_metadata.name == "history_periods_do_not_overlap" for n in generic)
    recorded = [(last_run_time(conn), tables_state(conn))]
    for change, args in STEPS:
        change(cache)
        dbt_project.build(args=(*WITH_HISTORY_TESTS, *args))
        recorded.append((last_run_time(conn), tables_state(conn)))
    for at, expected in recorded:
        assert history_as_of(conn, at) == expected, f"as of {at}"
    # before the first build, history knows nothing
    first = recorded[0][0]
    before = first.replace(year=first.year - 1)
    assert history_as_of(conn, before) == ({}, {})
    # a run with no change writes no history row
    counted = conn.execute("select count(*) from public.group_membership_history").fetchone()
    dbt_project.build()
    recounted = conn.execute("select count(*) from public.group_membership_history").fetchone()
    assert recounted == counted


def test_the_property_history_check_fails_on_a_period_closed_late_or_a_lost_group(
    dbt_project: DbtProject,
):
    """The oracle the equivalence property applies after every step (support/history.py)
    passes on the real history and fails on a history that kept a removed member one run too
    long, or lost a group's period: as a whole and through the query command's SQL."""
    conn = dbt_project.connect()
    cache = small_cache(LegacyCache(conn).create())
    dbt_project.build()
    held = [(last_run_time(conn), tables_state(conn))]
    _rebalance_spy(cache)
    dbt_project.build()
    held.append((last_run_time(conn), tables_state(conn)))
    check_history(conn, held)

    conn.execute(
        "update public.group_membership_history set valid_to = null, closed_batch = null"
        " where group_name = 'SPY' and symbol = 'XOM'"
    )
    with pytest.raises(HistoryViolation) as late:
        check_history(conn, held)
    assert "query etf/theme/sector ETF SPY (DEFAULT)" in str(late.value)
    assert "query symbol XOM (DEFAULT)" in str(late.value)

    conn.execute(
        "update public.group_membership_history set valid_to = %s"
        " where group_name = 'SPY' and symbol = 'XOM'",
        (held[1][0],),
    )
    check_history(conn, held)
    conn.execute("delete from public.definition_group_history where group_name = 'QQQ'")
    with pytest.raises(HistoryViolation) as lost:
        check_history(conn, held)
    assert "groups missing" in str(lost.value) and "'QQQ'" in str(lost.value)


def test_a_group_renamed_in_place_keeps_its_identity_and_history_holds_both_names(
    dbt_project: DbtProject,
):
    """A mapping change renames groups in place (same id): etf_universe's name prefix `etf_`
    becomes `universe_`, as if the seed were edited and reloaded. The history closes each old
    name's period and opens the new name's at that run, for the group and for every member;
    as of before the run it answers with the old names."""
    conn = dbt_project.connect()
    small_cache(LegacyCache(conn).create())
    dbt_project.build()
    renamed_at_earliest = last_run_time(conn)
    old_groups, old_memberships = tables_state(conn)
    ids_before = dict(
        conn.execute(
            "select name, id from public.definition_groups where name like 'etf\\_%'"
        ).fetchall()
    )
    assert set(ids_before) == {"etf_theme_crypto", "etf_tracked_etfs"}

    (seed_schema,) = conn.execute(
        "select table_schema from information_schema.tables"
        " where table_name = 'cache_type_mappings'"
    ).fetchone() or (None,)
    conn.execute(
        sql.SQL("update {} set name_prefix = 'universe_' where cache_type = 'etf_universe'").format(
            sql.Identifier(seed_schema, "cache_type_mappings")
        )
    )
    dbt_project.invoke("run")  # `run`, not `build`: a build would reload the original seed
    renamed_at = last_run_time(conn)
    assert renamed_at > renamed_at_earliest

    ids_after = dict(
        conn.execute(
            "select name, id from public.definition_groups where name like 'universe\\_%'"
        ).fetchall()
    )
    assert ids_after == {
        "universe_theme_crypto": ids_before["etf_theme_crypto"],
        "universe_tracked_etfs": ids_before["etf_tracked_etfs"],
    }
    assert history_as_of(conn, renamed_at) == tables_state(conn)
    assert history_as_of(conn, renamed_at - timedelta(microseconds=1)) == (
        old_groups,
        old_memberships,
    )
    periods = conn.execute(
        "select group_name, valid_to is null from public.definition_group_history"
        " where group_id = %s order by valid_from",
        (ids_before["etf_tracked_etfs"],),
    ).fetchall()
    assert periods == [("etf_tracked_etfs", False), ("universe_tracked_etfs", True)]


def test_pruning_the_change_log_keeps_what_history_has_not_applied(dbt_project: DbtProject):
    conn = dbt_project.connect()
    cache = small_cache(LegacyCache(conn).create())
    dbt_project.build()
    opened = last_run_time(conn)
    _rebalance_spy(cache)
    # publish without the history models: their watermark stays behind, so the prune
    # keeps the batches they have not applied
    dbt_project.build(args=("--exclude", "group_membership_history definition_group_history"))
    rebalanced_at = last_run_time(conn)
    pending = conn.execute(
        "select count(*) from public.migration_change_log where environment = 'DEFAULT'"
        " and batch > (select batch from public.migration_watermarks where environment ="
        " 'DEFAULT' and consumer = 'group_membership_history')"
    ).fetchone()
    assert pending is not None and pending[0] > 0
    _reweight_qqq(cache)
    dbt_project.build()
    rows = conn.execute(
        "select symbol, valid_from from public.group_membership_history"
        " where group_name = 'SPY' and valid_from > %s order by symbol",
        (opened,),
    ).fetchall()
    # dated by the run that published them, not by the run that recorded them
    assert rows == [("AMD", rebalanced_at), ("CVX", rebalanced_at)]
    [(closed,)] = conn.execute(
        "select valid_to from public.group_membership_history"
        " where group_name = 'SPY' and symbol = 'XOM'"
    ).fetchall()
    assert closed == rebalanced_at


def test_a_database_built_before_history_gets_it_from_its_next_run(dbt_project: DbtProject):
    conn = dbt_project.connect()
    small_cache(LegacyCache(conn).create())
    dbt_project.build(args=("--exclude", "group_membership_history definition_group_history"))
    # as an earlier release left it: no published_at on the change log
    conn.execute("alter table public.migration_change_log drop column published_at cascade")
    dbt_project.build()
    opened = last_run_time(conn)
    rows = conn.execute(
        "select distinct valid_from, valid_to from public.group_membership_history"
    ).fetchall()
    assert rows == [(opened, None)]
    assert (
        conn.execute("select count(*) from public.group_membership_history").fetchone()
        == conn.execute("select count(*) from public.group_memberships").fetchone()
    )


@pytest.fixture(scope="module")
def rebalanced_template(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[tuple[str, datetime, datetime]]:
    """Once per module: DEFAULT built, then SPY rebalanced and rebuilt, kept as a template
    database; its name and the two run times."""
    project = DbtProject(
        pg_server.recreate_database(migration_database), dbt_work_dir, _session_manifests
    )
    with project.connect() as conn:
        cache = small_cache(LegacyCache(conn).create())
        project.build()
        first = last_run_time(conn)
        _rebalance_spy(cache)
        project.build()
        second = last_run_time(conn)
    template = f"{migration_database}_rebalanced"
    pg_server.clone_database(migration_database, template)
    yield template, first, second
    pg_server.drop_database(template)


@pytest.fixture
def history_environment(
    pg_server: PgServer,
    rebalanced_template: tuple[str, datetime, datetime],
    dbt_project: DbtProject,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[datetime, datetime]:
    """This test's database: DEFAULT built, then SPY rebalanced and rebuilt (a copy of the
    module's template); the two run times.  The query command's environment points at it."""
    template, first, second = rebalanced_template
    pg_server.clone_database(template, dbt_project.settings["PGDATABASE"])
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")
    return first, second


def test_query_answers_members_groups_and_changes_as_of_a_date(
    history_environment: tuple[datetime, datetime], capsys: pytest.CaptureFixture[str]
):
    first, second = history_environment
    between = first + (second - first) / 2
    assert main(["query", "etf", "SPY", "--as-of", between.isoformat(), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["AAPL", "MSFT", "NVDA", "XOM"]
    assert main(["query", "symbol", "XOM", "--as-of", second.isoformat(), "--format", "json"]) == 0
    groups = {(r["group_type"], r["group_name"]) for r in json.loads(capsys.readouterr().out)}
    assert ("ETF", "SPY") not in groups and ("ETF", "XLE") in groups
    assert main(["query", "changes", "SPY", "--since", first.isoformat(), "--format", "json"]) == 0
    changes = [(r["change"], r["symbol"]) for r in json.loads(capsys.readouterr().out)]
    assert changes == [("added", "AMD"), ("added", "CVX"), ("removed", "XOM")]
    assert main(["query", "changes", "SPY", "--since", second.isoformat()]) == 0
    assert "(no rows)" in capsys.readouterr().out


def test_query_before_history_began_says_since_when_it_is_known(
    history_environment: tuple[datetime, datetime], capsys: pytest.CaptureFixture[str]
):
    assert main(["query", "etf", "SPY", "--as-of", "2020-01-01"]) == 2
    err = capsys.readouterr().err
    assert "history of DEFAULT starts at" in err and "Traceback" not in err


def test_rollback_closes_the_environments_history_and_the_next_build_reopens_it(
    history_environment: tuple[datetime, datetime],
    dbt_project: DbtProject,
    capsys: pytest.CaptureFixture[str],
):
    assert main(["rollback", "--target", "default", "--yes"]) == 0
    assert "open periods (closed now, kept)" in capsys.readouterr().out
    conn = dbt_project.connect()
    row = conn.execute(
        "select count(*) filter (where valid_to is null), max(valid_to)"
        " from public.group_membership_history where environment = 'DEFAULT'"
    ).fetchone()
    assert row is not None
    still_open, rolled_back_at = row
    assert still_open == 0
    dbt_project.build()
    assert history_as_of(conn, rolled_back_at) == ({}, {})
    assert history_as_of(conn, last_run_time(conn)) == tables_state(conn)


def test_pruning_history_keeps_the_retention_window_exact_and_refuses_earlier_dates(
    history_environment: tuple[datetime, datetime],
    dbt_project: DbtProject,
    capsys: pytest.CaptureFixture[str],
):
    first, second = history_environment
    conn = dbt_project.connect()
    between = first + (second - first) / 2
    now = conn.execute("select clock_timestamp() at time zone 'UTC'").fetchone()
    assert now is not None
    days = (now[0] - between).total_seconds() / 86400
    dbt_project.invoke(
        "run-operation prune_history", args=("--args", json.dumps({"retention_days": days}))
    )
    row = conn.execute(
        "select min(valid_from) from public.group_membership_history where environment = 'DEFAULT'"
    ).fetchone()
    assert row is not None
    starts = row[0]
    assert first < starts < second
    # from the cutoff on, every answer is what the tables held
    state_now = tables_state(conn)
    assert history_as_of(conn, second) == state_now
    spy_at_start = {
        key[4]
        for key in history_as_of(conn, starts)[1]
        if key[1:4] == ("ETF", "etf_holdings", "SPY")
    }
    assert spy_at_start == {"AAPL", "MSFT", "NVDA", "XOM"}
    # before it, the query says it does not know
    assert main(["query", "etf", "SPY", "--as-of", first.isoformat()]) == 2
    assert "history of DEFAULT starts at" in capsys.readouterr().err


HISTORY_ROWS_SQL = (
    "select * from public.group_membership_history where environment = 'DEFAULT'"
    " order by group_id, symbol, valid_from"
)


def test_backup_and_restore_carry_the_environments_history(
    history_environment: tuple[datetime, datetime],
    dbt_project: DbtProject,
    tmp_path: Path,
):
    conn = dbt_project.connect()
    backed_up = conn.execute(HISTORY_ROWS_SQL).fetchall()
    made = operations.backup(dbt_project.settings, "DEFAULT", directory=tmp_path)
    assert made.rows["group_membership_history"] == len(backed_up)
    _reweight_qqq(LegacyCache(conn))
    dbt_project.build()
    assert conn.execute(HISTORY_ROWS_SQL).fetchall() != backed_up
    assert main(["restore", str(made.path), "--yes"]) == 0
    assert conn.execute(HISTORY_ROWS_SQL).fetchall() == backed_up
