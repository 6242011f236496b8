"""Fuzz: no value in any field of any cache row can stop a run (README, "Nothing is lost").

Every example starts from a built copy of the small cache, adds a handful of rows whose
type, key, name, environment and value are drawn at random -- hypothesis's recursive JSON in
every field of every shape, look-alike types, invisible keys, date-like and not-quite-date
strings -- and builds: the build must exit 0 with every singular test passing (the
reconciliation identity in both directions among them), and the published lists must keep
parity with their legacy JSON (tests/support/parity.py).  Every other example also runs a
`--full-refresh`.  The default profile runs on both servers in `make test`; `pytest -m slow`
runs 150 examples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from support.databases import PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.parity import assert_parity, dbt_test_statuses

BUILD_ARGS = ("--exclude", "resource_type:unit_test", "test_type:generic")
MAPPED_TYPES = (
    "etf_holdings",
    "theme_definition",
    "sector_industry_map",
    "stock_metadata",
    "stock_universe",
    "etf_universe",
)
LOOK_ALIKE_TYPES = (
    "ETF_HOLDINGS",
    "etf_holdings ",
    "Stock_Metadata",
    " etf_universe",
    "THEME_DEFINITION",
)
SYMBOLS = ("AAPL", "msft", " NVDA ", "BRK.B", "XOM", "CVX", "OXY", "ÄPPL", "", "\u200b")
INVISIBLE = ("\t", "\n", "\u00a0", "\u200b", "\ufeff", " \u2003", "\u200d")

# any character PostgreSQL can store in text and jsonb (no NUL, no lone surrogate)
characters = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
texts = st.text(alphabet=characters, max_size=12)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=10,
)
date_like = st.from_regex(
    r"\A\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?\Z"
)
any_field = st.one_of(json_values, date_like, st.sampled_from(SYMBOLS))
elements = st.one_of(
    st.sampled_from(SYMBOLS),
    json_values,
    st.fixed_dictionaries(
        {"symbol": any_field},
        optional={
            "ticker": any_field,
            "weight": any_field,
            "weight_pct": any_field,
            "position": any_field,
            "element": any_field,
        },
    ),
)
member_lists = st.one_of(st.lists(elements, max_size=5), json_values)
values = st.one_of(
    json_values,
    member_lists,
    st.fixed_dictionaries(
        {},
        optional={
            "holdings": member_lists,
            "symbols": member_lists,
            "stocks": member_lists,
            "etfs": member_lists,
            "last_updated": any_field,
            "sector": any_field,
            "industry": any_field,
            "description": any_field,
            "source": any_field,
            "legacy_source": any_field,
            "legacy_fields": any_field,
            "market_cap_threshold": any_field,
        },
    ),
)
rows = st.fixed_dictionaries(
    {
        "type": st.one_of(st.sampled_from(MAPPED_TYPES), st.sampled_from(LOOK_ALIKE_TYPES), texts),
        "key": st.one_of(
            st.sampled_from(("SPY", "energy", "XOM", "late", "etf_late", *SYMBOLS, *INVISIBLE)),
            st.text(alphabet=characters, max_size=100),
        ),
        "name": st.one_of(st.sampled_from(("Energy", "Information Technology")), texts),
        "environment": st.one_of(
            st.sampled_from(("DEFAULT", "PROD", "prod ", "dev", "Default")),
            st.text(alphabet=characters, max_size=10),
        ),
        "value": values,
        "updated": st.booleans(),
    }
)

# rows that become groups (a mapped type in DEFAULT, a member list), so that what is random
# in their fields reaches the published tables, not only the exceptions
publishable_rows = st.fixed_dictionaries(
    {
        "type": st.sampled_from(MAPPED_TYPES),
        "key": st.sampled_from(("SPY", "QQQ", "energy", "XOM", "late", "etf_late", "NEW")),
        "name": st.sampled_from(("Energy", "Fund")),
        "environment": st.just("DEFAULT"),
        "value": st.fixed_dictionaries(
            {"holdings": member_lists, "symbols": member_lists, "last_updated": date_like},
            optional={
                "stocks": member_lists,
                "sector": any_field,
                "source": any_field,
                "legacy_source": any_field,
                "description": any_field,
            },
        ),
        "updated": st.booleans(),
    }
)

OUT_OF_RANGE_OFFSET: dict[str, Any] = {
    "type": "etf_holdings",
    "key": "NEW",
    "name": "Fund",
    "environment": "DEFAULT",
    "value": {"holdings": ["AAPL", {"symbol": "MSFT", "ticker": "X"}],
              "last_updated": "2025-12-05T10:00:00+16:00"},
    "updated": True,
}  # fmt: skip


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


DEFAULT_EXAMPLES = {"embedded": 8, "service": 6}
SLOW_EXAMPLES = 150


def build_once(project: DbtProject) -> None:
    """The module's template: the small cache, built once."""
    with project.connect() as conn:
        small_cache(LegacyCache(conn).create())
    project.build("default", args=BUILD_ARGS)


def _insert(conn: psycopg.Connection, row: dict[str, Any]) -> bool:
    try:
        with conn.transaction():
            conn.execute(
                "insert into public.cache_entries"
                " (type, name, key, value, environment, created_at, updated_at)"
                " values (%s, %s, %s, %s::jsonb, %s, now(), case when %s then now() end)",
                (row["type"], row["name"], row["key"], json.dumps(row["value"]),
                 row["environment"], row["updated"]),
            )  # fmt: skip
    except (psycopg.errors.UniqueViolation, psycopg.errors.StringDataRightTruncation):
        return False
    return True


class Fuzz:
    def __init__(self, pg_server: PgServer, template: str, project: DbtProject) -> None:
        self.pg_server, self.template, self.project = pg_server, template, project
        self.examples = 0

    def check(self, cache_rows: list[dict[str, Any]]) -> None:
        self.examples += 1
        self.pg_server.clone_database(self.template, self.project.settings["PGDATABASE"])
        with self.project.connect() as conn:
            added = sum(_insert(conn, row) for row in cache_rows)
            note(f"{added} rows added: {cache_rows!r}")
            builds = [False, True] if self.examples % 2 == 0 else [False]
            for full_refresh in builds:
                args = (*BUILD_ARGS, "--full-refresh") if full_refresh else BUILD_ARGS
                # raises DbtRunFailed (with dbt's message) unless the build exits 0
                statuses = dbt_test_statuses(self.project.build("default", args=args))
                failed = {name: s for name, s in statuses.items() if s != "pass"}
                assert not failed, failed
                assert statuses.get("assert_every_source_element_is_accounted_for") == "pass"
                assert_parity(conn, "DEFAULT")


@pytest.fixture
def fuzz(pg_server: PgServer, module_template: str, dbt_project: DbtProject) -> Iterator[Fuzz]:
    yield Fuzz(pg_server, module_template, dbt_project)


def _run(fuzz: Fuzz, examples: int) -> None:
    started = time.perf_counter()

    @_settings(examples)
    @given(cache_rows=st.lists(st.one_of(publishable_rows, rows), min_size=1, max_size=6))
    # the value issue 15 found aborting a run, always tried first (the random ones rarely
    # reach a published group's last_updated within the default budget)
    @example(cache_rows=[OUT_OF_RANGE_OFFSET])
    def never_aborts(cache_rows: list[dict[str, Any]]) -> None:
        fuzz.check(cache_rows)

    never_aborts()
    print(f"{fuzz.examples} examples in {time.perf_counter() - started:.0f} s")


def test_random_json_in_every_field_never_aborts_a_run(fuzz: Fuzz, pg_server: PgServer) -> None:
    _run(fuzz, DEFAULT_EXAMPLES[pg_server.kind])
    assert fuzz.examples >= DEFAULT_EXAMPLES[pg_server.kind]


@pytest.mark.slow
def test_random_json_in_every_field_never_aborts_a_run_many_examples(fuzz: Fuzz) -> None:
    _run(fuzz, SLOW_EXAMPLES)
