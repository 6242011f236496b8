"""The round trip, checked independently of the SQL (docs/design.md §13): the compatibility
relation ``<schema>_compat_<env>.cache_entries`` against the legacy cache, in Python.

For every entry of the environment the migration published: its row's value minus its member
lists equals the legacy value minus its lists, and its members read as the migration reads an
element -- (symbol, weight, other keys), tests/support/parity.py's reader -- in order, equal
the legacy elements minus exactly the positions migration_exceptions records as errors for
the entry (and an element another writer's membership of the group stands for, §10).  A
sector's value is compared whole.  Every entry left out as a whole is listed as not_migrated;
no row stands for an entry that is not published (a group kept for another writer's members
aside).  With ``exact=True`` every row must also be the legacy JSON itself (the sample).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from support.parity import LIST_TYPES, member_list, read_element

MAPPED_TYPES = (*LIST_TYPES, "sector_industry_map")
PLACES = ("holdings", "symbols", "stocks", "etfs")

LEGACY_SQL = """
select id, cache_type, key, value::text, coalesce(updated_at, created_at)
from (
  select *, translate(btrim(type, E' \\t\\r\\n'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                      'abcdefghijklmnopqrstuvwxyz') as cache_type
  from public.cache_entries
) as legacy
where upper(btrim(environment, E' \\t\\r\\n')) = %s and cache_type = any(%s)
"""

COMPAT_SQL = """
select type, key, environment, value::text, group_id, migration_status, is_exact_legacy_value
from {compat}
"""


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text, parse_float=Decimal, parse_int=Decimal)


def _reading(position: int, element: Any) -> tuple[Any, ...]:
    read = read_element(position, element)
    others = (
        {k: v for k, v in element.items() if k not in ("symbol", "ticker", "weight", "weight_pct")}
        if isinstance(element, dict)
        else {}
    )
    return (read.symbol, read.weight, json.dumps(others, sort_keys=True, default=str))


def _rest(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in PLACES}
    return {}


def round_trip_problems(
    conn: psycopg.Connection, environment: str, *, schema: str = "public", exact: bool = False
) -> list[str]:
    """Every way the compatibility relation of ``environment`` fails the round trip."""
    compat = sql.Identifier(f"{schema}_compat_{environment.lower()}", "cache_entries")
    ops = sql.Identifier(f"{schema}_ops_{environment.lower()}", "migration_exceptions")
    legacy: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in conn.execute(LEGACY_SQL, (environment, list(MAPPED_TYPES))).fetchall():
        legacy.setdefault((row[1], row[2]), []).append(row)
    left_out: set[tuple[str, str, str]] = set()
    errors: dict[int, set[int]] = {}
    entry_errors: set[int] = set()
    for entry_id, cache_type, key, raw_env, position, severity in conn.execute(
        sql.SQL(
            "select cache_entry_id, cache_type, entry_key, raw_environment, element_position,"
            " severity from {}"
        ).format(ops)
    ).fetchall():
        if severity != "error" or cache_type not in MAPPED_TYPES:
            continue
        if position is None:
            left_out.add((cache_type, key, raw_env))
            entry_errors.add(entry_id)
        else:
            errors.setdefault(entry_id, set()).add(position)
    foreign: dict[int, set[str]] = {}
    for group_id, symbol in conn.execute(
        sql.SQL(
            "select m.group_id, m.symbol from {m} as m where not exists (select 1 from {lm} as lm"
            " where lm.membership_id = m.id)"
        ).format(
            m=sql.Identifier(schema, "group_memberships"),
            lm=sql.Identifier(schema, "migration_ledger_memberships"),
        )
    ).fetchall():
        foreign.setdefault(group_id, set()).add(symbol)

    problems: list[str] = []
    rows = conn.execute(sql.SQL(COMPAT_SQL).format(compat=compat)).fetchall()
    listed = {(t, k, e) for t, k, e, _, _, status, _ in rows if status == "not_migrated"}
    for missing in sorted(left_out - listed):
        problems.append(f"{missing}: left out as a whole, but not listed as not_migrated")
    served = set()
    for cache_type, key, _env, value_text, group_id, status, is_exact in rows:
        if status == "not_migrated":
            continue
        served.add((cache_type, key))
        label = f"{cache_type} {key!r}"
        versions = [v for v in legacy.get((cache_type, key), []) if v[0] not in entry_errors]
        if not versions:
            if not foreign.get(group_id):
                problems.append(f"{label}: served, but no published entry stands for it")
            continue
        entry_id, _, _, legacy_text, _ = max(versions, key=lambda v: (v[4], v[0]))
        value, legacy_value = _json(value_text), _json(legacy_text)
        if exact and (not is_exact or value != legacy_value):
            problems.append(f"{label}: not the legacy JSON exactly: {value_text[:200]}")
        if cache_type == "sector_industry_map":
            if value != legacy_value:
                problems.append(f"{label}: value {value} is not the legacy value {legacy_value}")
            continue
        if _rest(value) != _rest(legacy_value):
            problems.append(f"{label}: the value without its member lists differs")
        excepted = errors.get(entry_id, set())
        held = foreign.get(group_id, set())
        expected = []
        for position, element in enumerate(member_list(cache_type, legacy_value) or [], 1):
            reading = _reading(position, element)
            if position not in excepted and reading[0] not in held:
                expected.append(reading)
        got = [
            _reading(position, element)
            for position, element in enumerate(member_list(cache_type, value) or [], 1)
        ]
        if got != expected:
            first = next(
                (
                    i
                    for i, pair in enumerate(zip(got, expected, strict=False))
                    if pair[0] != pair[1]
                ),
                min(len(got), len(expected)),
            )
            problems.append(
                f"{label}: member {first + 1} is {got[first : first + 1]} in the compatibility "
                f"value, {expected[first : first + 1]} in the legacy lists minus their recorded "
                f"errors ({len(got)} and {len(expected)} members)"
            )
    for (cache_type, key), versions in sorted(legacy.items()):
        if any(v[0] not in entry_errors for v in versions) and (cache_type, key) not in served:
            problems.append(f"{cache_type} {key!r}: published, but has no compatibility row")
    return problems


def assert_round_trip(conn: psycopg.Connection, environment: str, **kwargs: Any) -> None:
    problems = round_trip_problems(conn, environment, **kwargs)
    assert not problems, f"round trip of {environment}:\n  " + "\n  ".join(problems[:30])
