"""A corpus of bad legacy input: each case gets the exception reason it should, the rest of
the data is still built, the reconciliation identity holds and published groups keep parity
with their legacy JSON (tests/support/parity.py).

Every case is its own cache entry (its own key), so all of them share one cache and three
builds (DEFAULT, and PROD / TEST for the respelled environments) in a module fixture; each
case is then one test asserting on `<schema>_ops_<env>.migration_exceptions`
and on the published tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.databases import PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.parity import ParityReport, dbt_test_statuses, parity_report

SQL_TEXT = "'); drop table cache_entries; --"
HUGE_MEMBERS = 20_000
PADDING = "x" * 230  # makes each holdings element ~260 bytes: the array is ~5 MB


@dataclass(frozen=True)
class Case:
    """One bad entry and what the migration must make of it.

    `reasons` maps an element position (None: the entry itself) to (reason, severity);
    `members` is the published member set, None when no group may be published.
    """

    id: str
    type: str
    key: str
    value: Any
    name: str = "Bad input case"
    environment: str = "DEFAULT"
    reasons: dict[int | None, tuple[str, str]] = field(default_factory=dict)
    members: frozenset[str] | None = None
    weights: dict[str, Decimal | None] = field(default_factory=dict)
    description: str | None = None

    @property
    def run_environment(self) -> str:
        normalised = self.environment.strip(" \t\r\n").upper()
        return normalised if normalised in ("DEFAULT", "TEST", "UAT", "PROD") else "DEFAULT"


def _members(*symbols: str) -> frozenset[str]:
    return frozenset(symbols)


def _element(
    case_id: str, element: Any, reason: str, *, severity: str = "error", **kwargs: Any
) -> Case:
    """An ETF holding AAPL and then the bad element (position 2)."""
    return Case(
        case_id,
        "etf_holdings",
        f"E_{case_id.upper()}",
        {"holdings": ["AAPL", element]},
        reasons={2: (reason, severity)},
        **{"members": _members("AAPL"), **kwargs},
    )


def _accepted(case_id: str, element: Any, symbol: str, weight: Decimal | None = None) -> Case:
    """An ETF whose only element is accepted as `symbol` without any exception."""
    return Case(
        case_id,
        "etf_holdings",
        f"A_{case_id.upper()}",
        {"holdings": [element]},
        members=_members(symbol),
        weights={symbol: weight},
    )


def _weight(case_id: str, element: dict[str, Any]) -> Case:
    """A kept member whose weight is unusable: NULL weight and a warning."""
    return Case(
        case_id,
        "etf_holdings",
        f"W_{case_id.upper()}",
        {"holdings": [element]},
        reasons={1: ("invalid_weight", "warning")},
        members=_members(element["symbol"]),
        weights={element["symbol"]: None},
    )


def _huge_holdings() -> dict[str, Any]:
    holdings = [
        {"symbol": f"H{i:06d}", "weight": 0.00004, "note": PADDING} for i in range(HUGE_MEMBERS)
    ]
    return {"holdings": holdings, "last_updated": "2025-12-05T10:00:00"}


CASES = [
    # the value itself is not an object / array of the expected shape
    Case("value_is_a_json_string", "etf_holdings", "V_STRING", "AAPL,MSFT",
         reasons={None: ("unknown_shape", "error")}),
    Case("value_is_a_json_number", "theme_definition", "v_number", 42,
         reasons={None: ("unknown_shape", "error")}),
    Case("value_is_json_null", "stock_universe", "v_null", None,
         reasons={None: ("unknown_shape", "error")}),
    Case("value_is_json_true", "etf_universe", "v_true", True,
         reasons={None: ("unknown_shape", "error")}),
    Case("value_is_a_string_holding_json", "etf_holdings", "V_JSON_TEXT",
         '{"holdings": ["AAPL"]}', reasons={None: ("unknown_shape", "error")}),
    Case("holdings_is_a_string", "etf_holdings", "H_STRING", {"holdings": "AAPL"},
         reasons={None: ("unknown_shape", "error")}),
    Case("holdings_is_an_object", "etf_holdings", "H_OBJECT", {"holdings": {"AAPL": 0.5}},
         reasons={None: ("unknown_shape", "error")}),
    Case("holdings_is_null", "etf_holdings", "H_NULL", {"holdings": None},
         reasons={None: ("unknown_shape", "error")}),
    Case("theme_without_symbols", "theme_definition", "no_symbols", {"description": "none"},
         reasons={None: ("unknown_shape", "error")}),
    Case("empty_holdings", "etf_holdings", "H_EMPTY", {"holdings": []}, members=_members()),
    # elements that are not symbols
    _element("null_symbol", None, "invalid_element"),
    _element("number_symbol", 42, "invalid_element"),
    _element("object_without_symbol", {"name": "Apple"}, "invalid_element"),
    _element("empty_object", {}, "invalid_element"),
    _element("array_element", ["MSFT"], "invalid_element"),
    _element("numeric_symbol_field", {"symbol": 42}, "invalid_element"),
    _element("empty_symbol", "", "invalid_symbol"),
    _element("whitespace_symbol", "   ", "invalid_symbol"),
    _element("tab_padded_symbol", "\tMSFT", "invalid_symbol"),
    _element("eleven_characters", "ABCDEFGHIJK", "invalid_symbol"),
    _element("leading_dot", ".MSFT", "invalid_symbol"),
    _element("unicode_umlaut", "ÄPPL", "invalid_symbol"),
    _element("unicode_cjk", "苹果", "invalid_symbol"),
    _element("unicode_fullwidth", "\uff2d\uff33\uff26\uff34", "invalid_symbol"),
    _element("unicode_zero_width_space", "MSFT\u200b", "invalid_symbol"),
    _element("unicode_dotless_i", "\u0131bm", "invalid_symbol"),
    _element("unicode_long_s", "\u017fpy", "invalid_symbol"),
    Case("stock_key_dotless_i", "stock_metadata", "x\u0131", {"sector": "Energy"},
         reasons={None: ("invalid_symbol", "error")}),
    _element("sql_in_symbol", "X'; drop table group_memberships; --", "invalid_symbol"),
    # symbols that are fine as they are, or once normalised
    _accepted("lowercase", "msft", "MSFT"),
    _accepted("space_padded_lowercase", "  nvda ", "NVDA"),
    _accepted("ten_characters", "ABCDEFGHIJ", "ABCDEFGHIJ"),
    _accepted("class_share_dot", "BRK.B", "BRK.B"),
    _accepted("class_share_dash", "BF-B", "BF-B"),
    _accepted("digit_first", "3M", "3M"),
    _accepted("ticker_object", {"ticker": "brk.b"}, "BRK.B"),
    # duplicates: the first occurrence is the member
    Case("duplicate_symbols", "etf_holdings", "DUPS", {"holdings": ["AAPL", "aapl", " AAPL "]},
         reasons={2: ("duplicate_in_group", "error"), 3: ("duplicate_in_group", "error")},
         members=_members("AAPL")),
    Case("duplicate_across_shapes", "etf_holdings", "DUPS2",
         {"holdings": [{"symbol": "MSFT", "weight": 0.1}, "MSFT"]},
         reasons={2: ("duplicate_in_group", "error")}, members=_members("MSFT"),
         weights={"MSFT": Decimal("0.1000")}),
    # weights
    _weight("negative_weight", {"symbol": "AAPL", "weight": -0.1}),
    _weight("weight_above_one", {"symbol": "AAPL", "weight": 1.5}),
    _weight("weight_as_text", {"symbol": "AAPL", "weight": "0.2"}),
    _weight("weight_null", {"symbol": "AAPL", "weight": None}),
    _weight("weight_object", {"symbol": "AAPL", "weight": {"value": 0.2}}),
    _weight("percent_above_hundred", {"symbol": "AAPL", "weight_pct": 150}),
    _weight("percent_as_text", {"symbol": "AAPL", "weight_pct": "12%"}),
    _accepted("percent_weight", {"symbol": "AAPL", "weight_pct": 12.5}, "AAPL", Decimal("0.125")),
    _accepted("weight_rounded", {"symbol": "AAPL", "weight": 0.12345}, "AAPL", Decimal("0.1235")),
    _accepted("weight_one", {"symbol": "AAPL", "weight": 1}, "AAPL", Decimal("1")),
    _accepted("weight_zero", {"symbol": "AAPL", "weight": 0}, "AAPL", Decimal("0")),
    # environments: 'dev' belongs to none; 'prod ' and 'Test' are respelled
    Case("environment_dev", "etf_holdings", "ENV_DEV", {"holdings": ["AAPL"]},
         environment="dev", reasons={None: ("invalid_environment", "error")}),
    Case("environment_prod_with_blank", "etf_holdings", "ENV_PROD", {"holdings": ["AAPL"]},
         environment="prod ", reasons={None: ("respelled_environment", "warning")},
         members=_members("AAPL")),
    Case("environment_title_case", "etf_holdings", "ENV_TEST", {"holdings": ["MSFT"]},
         environment="Test", reasons={None: ("respelled_environment", "warning")},
         members=_members("MSFT")),
    # a cache type the migration does not know is not migrated, and not an error either
    Case("unknown_type", "etf_holding", "TYPO", {"holdings": ["AAPL"]}),
    # size and length limits
    Case("five_megabyte_holdings", "etf_holdings", "HUGE", _huge_holdings(),
         members=frozenset(f"H{i:06d}" for i in range(HUGE_MEMBERS))),
    Case("name_longer_than_target_allows", "etf_universe", "u" * 97, ["SPY"],
         reasons={None: ("name_too_long", "error")}),
    Case("name_exactly_at_the_limit", "etf_universe", "v" * 96, ["SPY"],
         members=_members("SPY")),
    Case("key_of_100_characters", "etf_holdings", "K" * 100, {"holdings": ["AAPL"]},
         members=_members("AAPL")),
    Case("blank_key", "etf_holdings", "  ", {"holdings": ["AAPL"]},
         reasons={None: ("invalid_name", "error")}),
    # SQL-looking text is data, stored verbatim
    Case("sql_in_fund_name", "etf_holdings", "SQLNAME", {"holdings": ["AAPL"]}, name=SQL_TEXT,
         members=_members("AAPL"), description=SQL_TEXT),
    Case("sql_in_theme_description", "theme_definition", "sql_description",
         {"description": f"Robert{SQL_TEXT}", "symbols": ["MSFT"]},
         members=_members("MSFT"), description=f"Robert{SQL_TEXT}"),
    Case("sql_in_key", "stock_universe", "x'); delete from definition_groups; --", ["NVDA"],
         name="Quote ' in the name", members=_members("NVDA"), description="Quote ' in the name"),
]  # fmt: skip


@dataclass
class Corpus:
    conn: psycopg.Connection
    entry_ids: dict[str, int]
    statuses: dict[str, dict[str, str]]
    parity: dict[str, ParityReport]


@pytest.fixture(scope="module")
def corpus(
    pg_server: PgServer,
    migration_database: str,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
) -> Iterator[Corpus]:
    """small_cache plus every case, in one database; one build per environment."""
    settings = pg_server.recreate_database(migration_database)
    project = DbtProject(settings, dbt_work_dir, _session_manifests)
    conn = pg_server.connect(migration_database, autocommit=True)
    cache = small_cache(LegacyCache(conn).create())
    entry_ids = {
        case.id: cache.add(case.type, case.key, case.name, case.value, case.environment)
        for case in CASES
    }
    statuses, parity = {}, {}
    for target in ("default", "prod", "test"):
        result = project.build(target)
        statuses[target.upper()] = dbt_test_statuses(result)
        parity[target.upper()] = parity_report(conn, target.upper())
    yield Corpus(conn, entry_ids, statuses, parity)
    conn.close()
    pg_server.drop_database(migration_database)


def _exceptions(corpus: Corpus, case: Case) -> dict[int | None, tuple[str, str]]:
    table = sql.Identifier(f"public_ops_{case.run_environment.lower()}", "migration_exceptions")
    rows = corpus.conn.execute(
        sql.SQL(
            "select element_position, reason, severity, detail from {} where cache_entry_id = %s"
        ).format(table),
        (corpus.entry_ids[case.id],),
    ).fetchall()
    found: dict[int | None, tuple[str, str]] = {}
    for position, reason, severity, detail in rows:
        assert detail, f"exception {reason} has no detail"
        assert position not in found, f"two exceptions for element {position}: {rows}"
        found[position] = (reason, severity)
    return found


def _published(corpus: Corpus, case: Case) -> tuple[Any, dict[str, Any]] | None:
    group = corpus.conn.execute(
        "select id, description from definition_groups"
        " where environment = %s and metadata -> 'source' ->> 'type' = %s"
        " and metadata -> 'source' ->> 'key' = %s",
        (case.run_environment, case.type, case.key),
    ).fetchone()
    if group is None:
        return None
    members = corpus.conn.execute(
        "select symbol, weight from group_memberships where group_id = %s", (group[0],)
    ).fetchall()
    return group[1], dict(members)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_gets_its_reason_and_the_rest_is_built(corpus: Corpus, case: Case) -> None:
    assert _exceptions(corpus, case) == case.reasons
    published = _published(corpus, case)
    if case.members is None:
        assert published is None, f"{case.id} should not be published"
    else:
        assert published is not None, f"{case.id} should be published"
        description, members = published
        assert set(members) == case.members
        for symbol, weight in case.weights.items():
            assert members[symbol] == weight, f"{symbol} weight"
        if case.description is not None:
            assert description == case.description
    environment = case.run_environment
    # the rest of the data is built: every group of the baseline cache is there
    baseline = corpus.conn.execute(
        "select count(*) from definition_groups where environment = 'DEFAULT'"
        " and metadata -> 'source' ->> 'key' in ('SPY', 'QQQ', 'XLE', 'crypto_miners', 'energy')"
    ).fetchone()
    assert baseline == (5,)
    assert corpus.statuses[environment]["assert_every_source_element_is_accounted_for"] == "pass"
    problems = [p for p in corpus.parity[environment].problems if f":{case.key})" in p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("environment", ["DEFAULT", "PROD", "TEST"])
def test_every_build_reconciles_and_keeps_legacy_parity(corpus: Corpus, environment: str) -> None:
    statuses = corpus.statuses[environment]
    assert statuses["assert_every_source_element_is_accounted_for"] == "pass"
    failed = {name: status for name, status in statuses.items() if status != "pass"}
    assert not failed
    report = corpus.parity[environment]
    assert report.groups_checked > 0
    assert report, str(report)


def test_sql_looking_text_changed_no_relation(corpus: Corpus) -> None:
    present = corpus.conn.execute(
        "select count(*) from pg_tables where schemaname = 'public'"
        " and tablename in ('cache_entries', 'definition_groups', 'group_memberships')"
    ).fetchone()
    assert present == (3,)
    assert corpus.conn.execute("select count(*) from cache_entries").fetchone()[0] > len(CASES)


def test_the_large_case_is_a_five_megabyte_array() -> None:
    (case,) = [c for c in CASES if c.id == "five_megabyte_holdings"]
    assert len(json.dumps(case.value["holdings"])) >= 5_000_000
