"""The analyst models, the analyses, the documentation and the query command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from support.databases import PROJECT_ROOT
from support.dbt_project import BuiltSample, DbtProject
from support.legacy_cache import LegacyCache, small_cache

from validation.cli import main
from validation.command import harness_command
from validation.query import close_names


def build_once(project: DbtProject) -> None:
    with project.connect() as conn:
        cache = LegacyCache(conn).create()
        small_cache(cache, "DEFAULT")
        small_cache(cache, "PROD")
        project.build("default")
        project.build("prod")


@pytest.fixture
def small_cache_built(module_copy: psycopg.Connection) -> psycopg.Connection:
    """The compact cache in DEFAULT and PROD, with DEFAULT then PROD built (build_once)."""
    return module_copy


def test_symbol_memberships_gather_every_group_of_a_symbol(small_cache_built: psycopg.Connection):
    rows = small_cache_built.execute(
        "select symbol, etfs, themes, sector, industry, custom_groups, etf_count, theme_count,"
        " group_count from symbol_memberships where environment = 'DEFAULT'"
        " and symbol in ('AAPL', 'NVDA', 'MARA') order by symbol"
    ).fetchall()
    assert rows == [
        ("AAPL", ["QQQ", "SPY"], [], "information_technology", "Hardware",
         ["index_sp500", "market_leaders"], 2, 0, 5),
        ("MARA", [], ["crypto_miners"], None, None, ["theme_crypto"], 0, 1, 2),
        ("NVDA", ["QQQ", "SPY"], ["ai_machine_learning"], "information_technology",
         "Semiconductors", ["index_sp500"], 2, 1, 5),
    ]  # fmt: skip


def test_group_summary_counts_members_and_weight_coverage(small_cache_built: psycopg.Connection):
    rows = small_cache_built.execute(
        "select name, member_count, weighted_member_count, weight_coverage, total_weight,"
        " source_type, source_key from group_summary where environment = 'DEFAULT'"
        " and name in ('QQQ', 'SPY', 'energy') order by name"
    ).fetchall()
    assert rows == [
        ("QQQ", 3, 3, Decimal("1.0000"), Decimal("0.3050"), "etf_holdings", "QQQ"),
        ("SPY", 4, 0, Decimal("0.0000"), None, "etf_holdings", "SPY"),
        ("energy", 2, 0, Decimal("0.0000"), None, "sector_industry_map", "energy"),
    ]


def test_etf_overlap_is_stored_in_both_directions(small_cache_built: psycopg.Connection):
    rows = small_cache_built.execute(
        "select etf, other_etf, shared_symbols, share_of_etf, share_of_other_etf, weighted_overlap"
        " from etf_overlap where environment = 'DEFAULT' order by etf, other_etf"
    ).fetchall()
    assert rows == [
        ("QQQ", "SPY", 3, Decimal("1.0000"), Decimal("0.7500"), None),
        ("SPY", "QQQ", 3, Decimal("0.7500"), Decimal("1.0000"), None),
        ("SPY", "XLE", 1, Decimal("0.2500"), Decimal("0.5000"), None),
        ("XLE", "SPY", 1, Decimal("0.5000"), Decimal("0.2500"), None),
    ]


def test_group_holdings_pack_each_groups_members_in_source_order_with_weights(
    small_cache_built: psycopg.Connection,
):
    rows = small_cache_built.execute(
        "select type, name, member_count, symbols, weights, positions from group_holdings"
        " where environment = 'DEFAULT' and name in ('QQQ', 'SPY', 'crypto_miners')"
        " order by name"
    ).fetchall()
    assert rows == [
        ("ETF", "QQQ", 3, ["AAPL", "MSFT", "NVDA"],
         [Decimal("0.1200"), Decimal("0.1000"), Decimal("0.0850")], [1, 2, 3]),
        ("ETF", "SPY", 4, ["AAPL", "MSFT", "NVDA", "XOM"], None, [1, 2, 3, 4]),
        ("THEME", "crypto_miners", 3, ["MARA", "RIOT", "CLSK"], None, [1, 2, 3]),
    ]  # fmt: skip


def test_group_holdings_follow_a_reordered_list_after_an_incremental_build(
    dbt_project: DbtProject, small_cache_built: psycopg.Connection
):
    conn = small_cache_built
    # the same members in another order: only their positions change (no member comes or goes)
    reordered = ["XOM", "NVDA", "MSFT", "AAPL"]
    LegacyCache(conn).replace("etf_holdings", "SPY", {"holdings": reordered}, "PROD")

    dbt_project.build("prod")

    packed = dict(
        conn.execute(
            "select environment, symbols from group_holdings where type = 'ETF' and name = 'SPY'"
        ).fetchall()
    )
    assert packed == {"DEFAULT": ["AAPL", "MSFT", "NVDA", "XOM"], "PROD": reordered}


def test_a_run_refreshes_only_its_own_environment_in_the_analyst_models(
    dbt_project: DbtProject, small_cache_built: psycopg.Connection
):
    conn = small_cache_built
    LegacyCache(conn).replace("etf_holdings", "SPY", {"holdings": ["AAPL"]}, "PROD")

    dbt_project.build("prod")

    counts = dict(
        conn.execute(
            "select environment, member_count from group_summary where name = 'SPY'"
        ).fetchall()
    )
    assert counts == {"DEFAULT": 4, "PROD": 1}


def test_analyst_watermarks_carry_their_rows_rule_version_and_history_s_do_not(
    small_cache_built: psycopg.Connection,
):
    # a release that changes what an analyst table holds bumps rows_rule_version
    # (dbt_project.yml): no watermark under the new name, so every environment recomputes it
    consumers = {
        consumer
        for (consumer,) in small_cache_built.execute(
            "select consumer from migration_watermarks where environment = 'PROD'"
        ).fetchall()
    }
    assert {"symbol_memberships@v2", "group_summary@v2", "etf_overlap@v2"} <= consumers
    assert {"group_membership_history", "definition_group_history"} <= consumers


def test_spy_and_voo_overlap_on_the_sample(built_sample: BuiltSample):
    with built_sample.connect() as conn:
        row = conn.execute(
            "select shared_symbols, etf_holdings, other_etf_holdings from etf_overlap"
            " where environment = 'DEFAULT' and etf = 'SPY' and other_etf = 'VOO'"
        ).fetchone()
        expected = conn.execute(
            "select count(*) from (select jsonb_array_elements_text(value -> 'holdings')"
            " from cache_entries where type = 'etf_holdings' and key = 'SPY'"
            " and environment = 'DEFAULT'"
            " intersect select jsonb_array_elements_text(value -> 'holdings')"
            " from cache_entries where type = 'etf_holdings' and key = 'VOO'"
            " and environment = 'DEFAULT') both_funds"
        ).fetchone()
    assert row is not None and expected is not None
    assert row == (expected[0], 504, 505)


# --- documentation ---------------------------------------------------------------------------


def test_every_model_and_column_is_described(built_sample: BuiltSample):
    """Against the catalog, so a column that exists in the database but not in YAML fails too."""
    built_sample.project.invoke("docs generate")
    target = Path(built_sample.project.work_dir) / "target-default"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    missing: list[str] = []
    for unique_id, node in catalog["nodes"].items():
        declared = manifest["nodes"][unique_id]
        if not declared.get("description", "").strip():
            missing.append(unique_id)
        for column in node["columns"]:
            described = declared["columns"].get(column, {}).get("description", "").strip()
            if not described:
                missing.append(f"{unique_id}.{column}")
    for unique_id, source in manifest["sources"].items():
        if not source.get("description", "").strip():
            missing.append(unique_id)
    assert missing == []
    assert (target / "index.html").exists()


def test_analyses_compile_to_the_spec_queries(built_sample: BuiltSample):
    built_sample.project.invoke(
        "compile", args=("--select", "resource_type:analysis"), variables={"etf": "QQQ"}
    )
    compiled = Path(built_sample.project.work_dir) / "target-default" / "compiled"
    holdings = next(compiled.rglob("etf_holdings.sql")).read_text()
    spec_join = next(compiled.rglob("etf_holdings_spec_join.sql")).read_text()
    assert "group_holdings.name = 'QQQ'" in holdings
    assert "definition_groups.name = 'QQQ'" in spec_join
    with built_sample.connect() as conn:
        packed = conn.execute(holdings).fetchall()
        joined = conn.execute(spec_join).fetchall()
        legacy = conn.execute(
            "select jsonb_array_elements_text(value -> 'holdings') from cache_entries"
            " where type = 'etf_holdings' and key = 'QQQ' and environment = 'DEFAULT'"
        ).fetchall()
    assert len(packed) == 102
    # the packed row lists the spec's join's symbols, in the legacy list's order
    assert sorted(row[0] for row in packed) == sorted(row[0] for row in joined)
    assert [row[0] for row in packed] == [row[0] for row in legacy]


# --- the query command -----------------------------------------------------------------------


@pytest.fixture
def sample_environment(built_sample: BuiltSample, monkeypatch: pytest.MonkeyPatch) -> None:
    """PG* variables pointing the command line at the built sample."""
    for name, value in built_sample.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")


@pytest.mark.usefixtures("sample_environment")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["etf", "qqq"], "ETF QQQ in DEFAULT: 102 members"),
        (["symbol", "AAPL"], "DIA IWB IWV QQQ SCHG SPY VOO VTI VUG XLK"),
        (["sector"], "information_technology"),
        (["sector", "energy"], "SECTOR energy in DEFAULT"),
        (["theme", "crypto_miners"], "THEME crypto_miners in DEFAULT: 9 members"),
        (["overlap", "SPY", "VOO"], "overlap of SPY and VOO in DEFAULT"),
    ],
)
def test_query_answers_each_question(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["query", *argv]) == 0
    assert expected in capsys.readouterr().out


@pytest.mark.usefixtures("sample_environment")
def test_query_formats_csv_and_json(capsys: pytest.CaptureFixture[str]):
    assert main(["query", "theme", "crypto_miners", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "symbol,position" and len(lines) == 10
    assert main(["query", "overlap", "SPY", "VOO", "--format", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["etf_holdings"] == 504 and record["other_etf_holdings"] == 505


@pytest.mark.usefixtures("sample_environment")
def test_query_etf_lists_the_holdings_in_the_legacy_lists_order(
    built_sample: BuiltSample, capsys: pytest.CaptureFixture[str]
):
    assert main(["query", "etf", "SPY", "--format", "json"]) == 0
    answered = json.loads(capsys.readouterr().out)
    with built_sample.connect() as conn:
        (legacy,) = conn.execute(
            "select value -> 'holdings' from cache_entries"
            " where type = 'etf_holdings' and key = 'SPY' and environment = 'DEFAULT'"
        ).fetchone()  # type: ignore[misc]
    assert [record["symbol"] for record in answered] == legacy
    assert [record["position"] for record in answered] == list(range(1, len(legacy) + 1))


def test_query_etf_reads_the_packed_row_with_its_weights(
    dbt_project: DbtProject,
    small_cache_built: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")

    assert main(["query", "etf", "QQQ", "--format", "csv"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "symbol,weight,position", "AAPL,0.12,1", "MSFT,0.1,2", "NVDA,0.085,3",
    ]  # fmt: skip


def test_query_etf_answers_another_writers_group_from_the_two_tables(
    dbt_project: DbtProject,
    small_cache_built: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """group_holdings holds the migration's groups (its ledger); a group someone else wrote
    is still answered, from the two tables."""
    conn = small_cache_built
    conn.execute(
        "insert into definition_groups (name, type, environment) values ('MINE', 'ETF', 'DEFAULT')"
    )
    conn.execute(
        "insert into group_memberships (group_id, symbol, weight)"
        " select id, 'AAPL', 0.5 from definition_groups where name = 'MINE'"
    )
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")

    assert main(["query", "etf", "MINE", "--format", "csv"]) == 0

    assert capsys.readouterr().out.splitlines() == ["symbol,weight", "AAPL,0.5"]


@pytest.mark.usefixtures("sample_environment")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["etf", "SPX"], "No ETF named 'SPX' in DEFAULT; did you mean SPY"),
        (["symbol", "NOPE1"], "Symbol 'NOPE1' is in no group of DEFAULT"),
        (["theme", "crypto"], "No THEME named 'crypto' in DEFAULT"),
        (["overlap", "SPY", "ZZZZ"], "No ETF named 'ZZZZ'"),
        (["etf", "SPY", "--target", "uat"], "Environment UAT has no migrated groups"),
        (["overlap", "SPY"], "'query overlap' takes 2 names"),
    ],
)
def test_query_errors_are_one_clear_sentence(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["query", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_query_without_tables_says_to_build(
    fresh_database: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    for name, value in fresh_database.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DBT_SCHEMA", raising=False)
    assert main(["query", "etf", "SPY"]) == 2
    err = capsys.readouterr().err
    assert f"build it first with '{harness_command()} build --target default'" in err
    # where it looked, and why there
    database = fresh_database["PGDATABASE"]
    assert f"looked in {fresh_database['PGHOST']}:" in err and database in err
    assert "schema public; no build of DEFAULT recorded in this database and no DBT_SCHEMA" in err


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("SPX", ["SPY"]),
        ("SPYY", ["SPY"]),
        ("qqq", ["QQQ"]),
        ("ARK", ["ARKK"]),
        ("crypto", ["crypto_miners"]),
        ("NOSUCH", []),  # SCHG shares three letters with it: not a suggestion
        ("XYZ", []),
    ],
)
def test_did_you_mean_suggests_only_what_is_close(typed: str, suggested: list[str]):
    names = ["SPY", "SCHG", "QQQ", "ARKK", "XLY", "XLK", "crypto_miners", "VOO"]
    assert close_names(typed, names) == suggested


def test_a_query_piped_into_head_ends_quietly(built_sample: BuiltSample):
    """`query … | head -1`: the reader goes away early; no BrokenPipeError traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env |= {**built_sample.settings, "DBT_SCHEMA": "public"}
    pipeline = subprocess.run(
        f"{shlex.quote(sys.executable)} -m validation query etf VTI | head -1",
        shell=True, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pipeline.stdout.startswith("ETF VTI in DEFAULT: 3508 members")
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr
