"""Legacy parity, checked independently of the dbt models (docs/design.md §2).

For every published ETF, THEME and CUSTOM group of an environment, the member set must equal
the legacy JSON array, normalised, minus the elements the run recorded as error exceptions.
The check reads the legacy rows itself and re-derives, in Python, which entry wins a
duplicated key, where each shape keeps its member list, how each element normalises and why
an element cannot be a member, then compares that with what the run published and recorded.
It is the reference for "the legacy answer"; which parity check guards what is stated once, in
the description of cache_entry_reconciliation (models/marts/operations/_operations.yml).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg import sql

from validation import targets

VALID_ENVIRONMENTS = targets.ENVIRONMENTS  # dbt_project.yml, var environments
# every list a value has is read, one after the other, the type's own list first;
# "(value)": a plain array value is the list
LIST_TYPES = {
    "etf_holdings": ("ETF", ("holdings", "symbols", "stocks", "etfs")),
    "theme_definition": ("THEME", ("symbols", "stocks", "etfs", "holdings")),
    "stock_universe": ("CUSTOM", ("(value)", "symbols", "stocks", "etfs", "holdings")),
    "etf_universe": ("CUSTOM", ("(value)", "symbols", "stocks", "etfs", "holdings")),
}
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,9}")
FOUR_PLACES = Decimal("0.0001")


def normalise_symbol(text: str) -> str:
    """Trimmed of blanks, ASCII letters upper-cased (a symbol is A-Z, 0-9, '.', '-')."""
    return text.strip(" ").translate(_ASCII_UPPER)


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_valid_symbol(symbol: str) -> bool:
    return SYMBOL_PATTERN.fullmatch(symbol) is not None


def member_list(cache_type: str, value: Any) -> list[Any] | None:
    """Where each legacy shape keeps its members, every list read; None when it has none."""
    places = LIST_TYPES[cache_type][1]
    if isinstance(value, list):
        return value if "(value)" in places else None
    if not isinstance(value, dict):
        return None
    lists = [value[key] for key in places if isinstance(value.get(key), list)]
    if not lists:
        return None
    return [element for found in lists for element in found]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


@dataclass(frozen=True)
class Element:
    """What one legacy element should become: a member (reason None) or an exception."""

    position: int
    symbol: str | None
    reason: str | None
    weight: Decimal | None = None
    bad_weight: bool = False
    conflicting_ticker: bool = False


def _names_disagree(element: Any) -> bool:
    """An object with both `symbol` and `ticker` that do not name the same symbol."""
    if not isinstance(element, dict) or "symbol" not in element or "ticker" not in element:
        return False
    symbol, ticker = element["symbol"], element["ticker"]
    if isinstance(symbol, str) and isinstance(ticker, str):
        return normalise_symbol(symbol) != normalise_symbol(ticker)
    return True


def read_element(position: int, element: Any) -> Element:
    """Reads one element the way docs/design.md §2 describes (duplicates are decided later)."""
    read = _read_element(position, element)
    if _names_disagree(element):
        return Element(read.position, read.symbol, read.reason, read.weight, read.bad_weight, True)
    return read


def _read_element(position: int, element: Any) -> Element:
    raw: str | None = None
    if isinstance(element, str):
        raw = element
    elif isinstance(element, dict):
        raw = next(
            (element[k] for k in ("symbol", "ticker") if isinstance(element.get(k), str)), None
        )
    if raw is None:
        return Element(position, None, "invalid_element")
    symbol = normalise_symbol(raw)
    if not is_valid_symbol(symbol):
        return Element(position, symbol, "invalid_symbol")
    weight, bad_weight = None, False
    if isinstance(element, dict):
        for key, scale in (("weight", Decimal(1)), ("weight_pct", Decimal(100))):
            if key in element:
                given = element[key]
                if _is_number(given) and 0 <= given <= scale:
                    weight = (Decimal(given) / scale).quantize(FOUR_PLACES, ROUND_HALF_UP)
                else:
                    bad_weight = True
                break
    return Element(position, symbol, None, weight, bad_weight)


def expected_elements(cache_type: str, value: Any) -> list[Element] | None:
    """Every element of an entry's member list with its expected fate, or None (no list)."""
    elements = member_list(cache_type, value)
    if elements is None:
        return None
    seen: set[str] = set()
    result = []
    for position, element in enumerate(elements, start=1):
        read = read_element(position, element)
        if read.reason is None and read.symbol in seen:
            read = Element(
                position, read.symbol, "duplicate_in_group",
                conflicting_ticker=read.conflicting_ticker,
            )  # fmt: skip
        if read.reason is None:
            seen.add(str(read.symbol))
        result.append(read)
    return result


@dataclass
class ParityReport:
    """What the parity check compared, and every disagreement it found."""

    environment: str
    groups_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"parity of {self.groups_checked} groups in {self.environment}"
        if not self.problems:
            return head + ": ok"
        return head + ":\n  " + "\n  ".join(self.problems[:50])


# a look-alike type (ETF_HOLDINGS, 'etf_holdings ') reads as the type it resembles, and
# ' prod' as PROD: the models' own macros ({cache_type}, {cache_environment})
LEGACY_SQL = """
select id, cache_type, key, name, value::text, md5(value::text),
       coalesce(updated_at, created_at)
from (
  select *, {cache_type} as cache_type
  from {cache}
) as legacy
where {cache_environment} = %s and cache_type = any(%s)
"""

# the groups and memberships the migration wrote: its ledger (docs/design.md §10)
GROUPS_SQL = """
select g.id, g.type, g.name, l.source_type, l.source_key, g.metadata -> 'source' ->> 'checksum'
from {groups} as g
join {ledger_groups} as l on l.group_id = g.id
where l.environment = %s and g.type in ('ETF', 'THEME', 'CUSTOM')
"""

MEMBERS_SQL = """
select m.group_id, m.symbol, m.weight, m.metadata, l.membership_id is not null as is_owned
from {memberships} as m
left join {ledger_memberships} as l on l.membership_id = m.id
where m.group_id = any(%s)
"""

EXCEPTIONS_SQL = """
select cache_entry_id, element_position, reason, severity from {exceptions}
"""


def parity_report(
    conn: psycopg.Connection,
    environment: str,
    *,
    schema: str = "public",
    source_schema: str = "public",
) -> ParityReport:
    """Compares every published ETF/THEME/CUSTOM group of `environment` with its legacy entry."""
    report = ParityReport(environment)
    operations = f"{schema}_ops_{environment.lower()}"
    names = {
        "cache": sql.Identifier(source_schema, "cache_entries"),
        "groups": sql.Identifier(schema, "definition_groups"),
        "memberships": sql.Identifier(schema, "group_memberships"),
        "exceptions": sql.Identifier(operations, "migration_exceptions"),
        "ledger_groups": sql.Identifier(schema, "migration_ledger_groups"),
        "ledger_memberships": sql.Identifier(schema, "migration_ledger_memberships"),
        "cache_type": targets.read_as("normalised_cache_type", sql.Identifier("type")),
        "cache_environment": targets.environment_of(sql.Identifier("environment")),
    }
    legacy: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in conn.execute(
        sql.SQL(LEGACY_SQL).format(**names), (environment, list(LIST_TYPES))
    ).fetchall():
        legacy.setdefault((row[1], row[2]), []).append(row)
    groups = conn.execute(sql.SQL(GROUPS_SQL).format(**names), (environment,)).fetchall()
    # the migration's memberships; another writer's rows in its groups apart (docs/design.md
    # §10: one holding a listed symbol stands for that element, the migration writes none)
    members: dict[int, dict[str, tuple[Any, Any]]] = {}
    foreign: dict[int, set[str]] = {}
    for group_id, symbol, weight, metadata, is_owned in conn.execute(
        sql.SQL(MEMBERS_SQL).format(**names), ([g[0] for g in groups],)
    ).fetchall():
        if is_owned:
            members.setdefault(group_id, {})[symbol] = (weight, metadata)
        else:
            foreign.setdefault(group_id, set()).add(symbol)
    recorded: dict[int, dict[Any, set[tuple[str, str]]]] = {}
    for entry_id, position, reason, severity in conn.execute(
        sql.SQL(EXCEPTIONS_SQL).format(**names)
    ).fetchall():
        recorded.setdefault(entry_id, {}).setdefault(position, set()).add((reason, severity))

    for group_id, group_type, name, source_type, source_key, checksum in groups:
        report.groups_checked += 1
        label = f"{group_type} {name} ({source_type}:{source_key})"
        winner = _winning_version(legacy.get((source_type, source_key), []))
        if foreign.get(group_id) and _is_unpublished(winner, recorded):
            continue  # its entry is gone or left out: kept for another writer's memberships
        if source_type not in LIST_TYPES or winner is None:
            report.problems.append(f"{label}: no legacy entry in {environment}")
            continue
        entry_id, _, _, _, value_text, value_md5, _ = winner
        if LIST_TYPES[source_type][0] != group_type:
            report.problems.append(f"{label}: a {source_type} entry should be {group_type}")
        if checksum != value_md5:
            report.problems.append(f"{label}: checksum is not the winning entry's (id {entry_id})")
        value = json.loads(value_text, parse_float=Decimal, parse_int=Decimal)
        elements = expected_elements(source_type, value)
        if elements is None:
            report.problems.append(f"{label}: published, but its entry has no member list")
            continue
        errors = {
            position: {reason for reason, severity in found if severity == "error"}
            for position, found in recorded.get(entry_id, {}).items()
        }
        # the parity statement: normalised legacy array minus recorded error exceptions
        kept = {
            e.symbol if e.symbol is not None else f"<element {e.position}>"
            for e in elements
            if not errors.get(e.position)
        }
        published = members.get(group_id, {})
        held = foreign.get(group_id, set()) & kept  # elements another writer's row stands for
        if kept != set(published) | held:
            report.problems.append(
                f"{label}: members {sorted(published)} but the legacy array minus its "
                f"recorded errors gives {sorted(kept)}"
            )
        for element in elements:
            if element.symbol not in held:
                _compare_element(report, label, element, recorded.get(entry_id, {}), published)
    return report


def _winning_version(versions: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The version of an entry the migration reads: the most recently updated, ties to the
    higher cache id; None when the entry has no version in the environment."""
    return max(versions, key=lambda r: (r[6], r[0])) if versions else None


def _is_unpublished(
    winner: tuple[Any, ...] | None, recorded: dict[int, dict[Any, set[tuple[str, str]]]]
) -> bool:
    """No current entry, or the winning one is left out (an entry-level error)."""
    if winner is None:
        return True
    return any(severity == "error" for _, severity in recorded.get(winner[0], {}).get(None, ()))


def _compare_element(
    report: ParityReport,
    label: str,
    element: Element,
    recorded: dict[int, set[tuple[str, str]]],
    published: dict[str, tuple[Any, Any]],
) -> None:
    """One element's expected fate against the exceptions and the membership it got."""
    found = recorded.get(element.position, set())
    where = f"{label} element {element.position}"
    warnings = {("conflicting_ticker", "warning")} if element.conflicting_ticker else set()
    if element.reason is not None:
        if found != {(element.reason, "error")} | warnings:
            report.problems.append(f"{where}: expected {element.reason}, recorded {found}")
        return
    expected = warnings | ({("invalid_weight", "warning")} if element.bad_weight else set())
    if found != expected:
        report.problems.append(f"{where}: expected exceptions {expected}, recorded {found}")
    weight, metadata = published.get(str(element.symbol), (None, None))
    if str(element.symbol) not in published:
        return  # reported by the member-set comparison
    if weight != element.weight:
        report.problems.append(f"{where}: weight {weight}, expected {element.weight}")
    if not isinstance(metadata, dict) or metadata.get("position") != element.position:
        report.problems.append(f"{where}: metadata {metadata} lacks position {element.position}")


def assert_parity(conn: psycopg.Connection, environment: str, **kwargs: Any) -> ParityReport:
    """Raises AssertionError listing every disagreement; returns the report otherwise."""
    report = parity_report(conn, environment, **kwargs)
    assert report, str(report)
    return report


def dbt_test_statuses(result: Any) -> dict[str, str]:
    """{test name: status} of the data tests an in-process dbt invocation ran."""
    statuses = {}
    for node_result in getattr(result.result, "results", []) or []:
        node = node_result.node
        if getattr(node, "resource_type", None) is not None and str(node.resource_type).endswith(
            "test"
        ):
            statuses[node.name] = str(node_result.status)
    return statuses
