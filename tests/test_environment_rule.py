"""One reading rule each (macros/sql_helpers/normalisation.sql and legacy_reading.sql): a build
and the harness read a legacy row's environment the same way, whatever its spelling, so a
backup and a restore --with-cache-entries handle exactly the rows a build counts as the
environment; and they read a member list's elements alike, so the round trip and the shadow
reads compare what the build read.  Against a real PostgreSQL: the build's staging and
intermediate models are the SQL side, the SQL the harness runs (validation/targets.py,
environment_of and rule) the Python side."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache

from validation import operations, targets

# Spellings a legacy script may have left, each on one ETF entry of its own.  The rule trims
# spaces, tabs, carriage returns and line feeds and upper-cases a-z; nothing else.
READ_AS_PROD = ["prod", " Prod\n", "prod\t", "\tPROD\r\n", "PrOd ", "prod\r"]
READ_AS_ANOTHER = ["default\n", " uat ", "Test\t"]
READ_AS_NONE = [
    "prod\u00a0",  # a non-breaking space is not trimmed
    "\u200bprod",  # nor a zero-width space
    "prod\v",  # nor a vertical tab
    "pro d",
    "PRODUCTION",
    "te\u017ft",  # a long s: str.upper() and a UTF-8 locale's upper() both make it TEST
    "\u1d18rod",  # a small capital P is not a letter a-z
    "",
    " ",
]
SPELLINGS = READ_AS_PROD + READ_AS_ANOTHER + READ_AS_NONE
# List elements in every shape a legacy writer left: read alike by the build and the harness.
ELEMENTS: list[Any] = [
    " aapl ",
    "msft\t",
    {"ticker": "nvda", "weight_pct": 12.5},
    {"symbol": "AMZN", "ticker": "XXX", "weight": 0.123456},
    {"symbol": "GOOG", "weight": 1.5},
    {"symbol": "META", "weight": "0.2"},
    {"symbol": "TSLA", "weight_pct": 101},
    {"symbol": 7, "ticker": "IBM", "note": "50%", "position": 3},
    {"symbol": "ORCL", "weight": -0.1, "weight_pct": 10},
    {"weight": 0.5},
    42,
    None,
    ["AAPL"],
    "caf\u00e9",
    "",
]
STAGING = sql.Identifier("public_staging_prod", "stg_legacy__cache_entries")
CACHE = sql.Identifier("public", "cache_entries")


def _key(position: int) -> str:
    return f"SPELL{position:02d}"


def build_once(project: DbtProject) -> None:
    with project.connect() as conn:
        cache = LegacyCache(conn).create()
        small_cache(cache, "PROD")
        for position, spelling in enumerate(SPELLINGS):
            cache.add(
                "etf_holdings",
                _key(position),
                f"Spelling {position}",
                {"holdings": ["AAPL"]},
                spelling,
            )
        cache.add("etf_holdings", "ELEMENTS", "Hostile elements", {"holdings": ELEMENTS}, "PROD")
        project.build("prod")


@pytest.fixture
def hostile_spellings_built(
    module_copy: psycopg.Connection, dbt_project: DbtProject, monkeypatch: pytest.MonkeyPatch
) -> psycopg.Connection:
    """PROD's compact cache and one ETF entry per spelling, built for PROD; PG* point at it."""
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")
    return module_copy


def _counted_by_the_build(conn: psycopg.Connection, environment: str) -> dict[int, tuple[Any, ...]]:
    """The cache rows the build reads as ``environment`` (its staging view), whole."""
    rows = conn.execute(
        sql.SQL(
            "select c.* from {cache} as c join {staging} as s on s.cache_entry_id = c.id"
            " where s.environment = %s"
        ).format(cache=CACHE, staging=STAGING),
        (environment,),
    ).fetchall()
    return {row[0]: row for row in rows}


def test_the_harness_reads_every_spelling_as_the_build_does(
    hostile_spellings_built: psycopg.Connection,
) -> None:
    conn = hostile_spellings_built
    rows = conn.execute(
        sql.SQL(
            "select c.environment, s.environment, s.is_known_environment, {harness}"
            " from {cache} as c join {staging} as s on s.cache_entry_id = c.id"
            " where c.key like 'SPELL%%'"
        ).format(
            harness=targets.environment_of(sql.Identifier("c", "environment")),
            cache=CACHE,
            staging=STAGING,
        )
    ).fetchall()

    assert sorted(raw for raw, *_ in rows) == sorted(SPELLINGS)
    for raw, by_the_build, known_to_the_build, by_the_harness in rows:
        assert by_the_harness == by_the_build, f"{raw!r}"
        # the environments the harness knows (dbt_project.yml, read by validation/targets.py)
        assert (by_the_harness in targets.ENVIRONMENTS) == known_to_the_build, f"{raw!r}"
    read_as = {raw: harness for raw, _, _, harness in rows}
    assert {raw for raw, environment in read_as.items() if environment == "PROD"} == set(
        READ_AS_PROD
    )
    assert [read_as[raw] for raw in READ_AS_ANOTHER] == ["DEFAULT", "UAT", "TEST"]
    assert not {read_as[raw] for raw in READ_AS_NONE} & set(targets.ENVIRONMENTS)


def test_the_build_publishes_exactly_the_entries_the_harness_counts_as_prod(
    hostile_spellings_built: psycopg.Connection,
) -> None:
    conn = hostile_spellings_built
    harness_prod = conn.execute(
        sql.SQL("select key from {cache} where key like 'SPELL%%' and {harness} = 'PROD'").format(
            cache=CACHE, harness=targets.environment_of(sql.Identifier("environment"))
        )
    ).fetchall()
    published = conn.execute(
        "select l.source_key from migration_ledger_groups as l"
        " where l.environment = 'PROD' and l.source_key like 'SPELL%%'"
    ).fetchall()

    expected = {_key(SPELLINGS.index(spelling)) for spelling in READ_AS_PROD}
    assert {key for (key,) in published} == {key for (key,) in harness_prod} == expected


def test_restore_with_cache_entries_puts_back_every_row_the_build_counts_as_prod(
    dbt_project: DbtProject, hostile_spellings_built: psycopg.Connection, tmp_path: Path
) -> None:
    """The backup takes every row the build reads as PROD ('prod\\t' and ' Prod\\n' too), and
    the restore replaces exactly those: a spelling the build does not count as PROD is
    neither backed up nor touched."""
    conn = hostile_spellings_built
    prod_rows = _counted_by_the_build(conn, "PROD")
    other_rows = conn.execute(
        sql.SQL("select * from {} where id <> all(%s) order by id").format(CACHE),
        (list(prod_rows),),
    ).fetchall()
    hostile = [row_id for row_id, row in prod_rows.items() if row[5] != "PROD"]
    assert len(hostile) == len(READ_AS_PROD)

    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    assert made.rows["cache_entries"] == len(prod_rows)
    # a loader then rewrites every PROD row and drops one with a hostile spelling
    conn.execute(
        sql.SQL("update {} set value = '[]'::jsonb where id = any(%s)").format(CACHE),
        (list(prod_rows),),
    )
    conn.execute(sql.SQL("delete from {} where id = %s").format(CACHE), (hostile[0],))

    restored = operations.restore(dbt_project.settings, made.path, with_cache_entries=True)

    assert restored["cache_entries"] == len(prod_rows)
    assert _counted_by_the_build(conn, "PROD") == prod_rows
    assert (
        conn.execute(
            sql.SQL("select * from {} where id <> all(%s) order by id").format(CACHE),
            (list(prod_rows),),
        ).fetchall()
        == other_rows
    )


def test_the_harness_reads_every_list_element_as_the_build_does(
    hostile_spellings_built: psycopg.Connection,
) -> None:
    conn = hostile_spellings_built
    rows = conn.execute(
        sql.SQL(
            "select e.element_position, e.element, e.symbol, e.weight, {reading}"
            " from {elements} as e join {cache} as c on c.id = e.cache_entry_id"
            " where c.key = 'ELEMENTS' order by e.element_position"
        ).format(
            reading=targets.rule("member_element_reading", sql.Identifier("e", "element")),
            elements=sql.Identifier("public_intermediate_prod", "int_member_elements"),
            cache=CACHE,
        )
    ).fetchall()

    assert [element for _, element, *_ in rows] == ELEMENTS
    for position, element, symbol, weight, (read_symbol, read_weight, _) in rows:
        assert read_symbol == symbol, f"element {position}: {element!r}"
        assert (None if read_weight is None else Decimal(str(read_weight))) == weight, (
            f"element {position}: {element!r}"
        )
    # the two odd ones the rule decides: 'ticker' when 'symbol' is no string, the weight over
    # a weight_pct, whatever their values
    readings = {position: reading for position, _, _, _, reading in rows}
    assert readings[8][0] == "IBM" and readings[8][2] == {"note": "50%", "position": 3}
    assert readings[9][1] is None


def test_every_reading_rule_renders_for_the_harness() -> None:
    """Each macro of the two files that promise plain Jinja renders to SQL the harness can
    compose and run with parameters: no percent sign of its own, braces escaped."""
    module = targets._rule_module()
    names = [
        name
        for path in (targets.NORMALISATION_MACROS, targets.RULE_FILES[-1])
        for name in re.findall(r"{% macro (\w+)\(", path.read_text(encoding="utf-8"))
    ]
    assert {"normalised_environment", "member_element_reading", "group_name_of"} <= set(names)
    for name in names:
        arity = len(getattr(module, name).arguments)
        rendered = targets.rule(name, *[sql.Identifier(f"x{i}") for i in range(arity)])
        text = rendered.as_string(None)
        assert "%" not in text, name
        assert "\x00" not in text, name
