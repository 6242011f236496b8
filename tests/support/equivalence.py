"""Random legacy-source changes, and the incremental-equals-fresh property they must keep.

A `Harness` owns three databases on the server under test: a template (a small cache in
DEFAULT and PROD, built once), the incremental database (re-created from the template for
every example, so every sequence starts from a built state without paying for a build) and
a reference database, rebuilt from nothing with the same cache content after every step.
`Change` subclasses are the source mutations hypothesis draws; each one edits
`cache_entries` the way the legacy loaders do (delete and re-insert, NULL `updated_at`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import strategies as st
from psycopg import sql

from support.databases import PROJECT_ROOT, PgServer, connect
from support.dbt_project import DbtProject, DbtRunFailed
from support.legacy_cache import BASE_TIME, LegacyCache, Published, published, small_cache
from validation import targets
from validation.sample import ensure_table

ENVIRONMENTS = {"default": "DEFAULT", "prod": "PROD"}
LIST_TYPES = ("etf_holdings", "theme_definition", "stock_universe", "etf_universe")
MAPPED_TYPES = (*LIST_TYPES, "sector_industry_map", "stock_metadata")
# The template's first builds run every model and test but the unit tests (they mock their
# inputs, so no source change can alter their outcome) and the generic column tests (not_null,
# unique, relationships, ...: the contracts' constraints enforce the same on the two tables, and
# the comparison with a fresh build checks every row).
BUILD_ARGS = ("--exclude", "resource_type:unit_test", "test_type:generic")
# Each step then builds what the property compares and what its singular tests read -- the
# reconciliation identity (both directions) and the empty-environment check -- and runs those
# tests; and the two history models, whose as-of answers the property checks against every
# earlier step's tables, with their periods-never-overlap tests; and group_holdings, which the
# property checks row for row against the two tables after every step.  Left out: the seed
# (static data the template loaded) and the other analytics marts (not compared here; their
# incremental runs equal fresh builds in tests/test_incremental_runs.py).
# The views stay in: a table rebuilt under them drops them (dbt replaces tables with cascade).
STEP_ARGS = (
    "--select",
    "resource_type:model,+test_type:singular",
    "resource_type:model,+definition_groups",
    "resource_type:model,+group_memberships",
    "resource_type:model,+group_membership_history",
    "resource_type:model,+definition_group_history",
    # group_holdings too: each step checks it against the two tables (issue 30)
    "group_holdings",
    "test_type:singular",
    "test_name:history_periods_do_not_overlap",
    # the staging views read only the source tables (no step rebuilds anything under them),
    # so the template's views serve every step
    "--exclude", "path:models/staging",
    "--indirect-selection", "empty",
    "--no-write-json",
)  # fmt: skip
# The reference is a fresh build of the two tables from nothing (on a copy of a database that
# holds only the seed: tests/support/equivalence.py's ReferenceWorker); its tests are not needed.
REFERENCE_ARGS = (
    "--select", "+definition_groups", "+group_memberships",
    "--exclude", "resource_type:test", "resource_type:unit_test", "resource_type:seed",
    "--no-write-json",
)  # fmt: skip


# --- the starting cache ---------------------------------------------------------------------


def starting_cache(cache: LegacyCache) -> None:
    """small_cache in DEFAULT, and a few entries (some sharing DEFAULT's keys) in PROD."""
    small_cache(cache, "DEFAULT")
    add = cache.add
    # fmt: off
    add("etf_holdings", "SPY", "SPDR S&P 500 ETF Trust",
        {"holdings": ["AAPL", "MSFT", "XOM"], "last_updated": "2025-12-04T10:00:00"}, "PROD")
    add("etf_holdings", "DIA", "SPDR Dow Jones ETF",
        {"holdings": [{"symbol": "AAPL", "weight": 0.05}, {"symbol": "CVX", "weight": 0.03}]},
        "PROD")
    add("theme_definition", "gold_miners", "Gold Miners",
        {"description": "Gold", "symbols": ["NEM", "GOLD", "AEM"]}, "PROD", updated=False)
    add("stock_universe", "prod_watch", "Watch list", ["AAPL", "NVDA", "NEM"], "PROD")
    add("sector_industry_map", "energy", "Energy",
        {"industries": ["Oil & Gas"], "description": "Energy sector"}, "PROD")
    for symbol in ("XOM", "CVX"):
        add("stock_metadata", symbol, f"{symbol} Corp.",
            {"sector": "Energy", "industry": "Oil & Gas"}, "PROD")
    # fmt: on


# --- source changes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    type: str
    key: str
    name: str
    value: Any
    environment: str

    @property
    def normalised_environment(self) -> str:
        return self.environment.strip(" \t\r\n").upper()


class Source:
    """The incremental database's cache_entries, edited like the legacy loaders do."""

    def __init__(self, conn: psycopg.Connection, clock: datetime) -> None:
        self.conn = conn
        self.clock = clock

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def rows(self, types: Iterable[str] = MAPPED_TYPES) -> list[Row]:
        found = self.conn.execute(
            "select id, type, key, name, value, environment from public.cache_entries"
            " where type = any(%s) order by id",
            (list(types),),
        ).fetchall()
        return [Row(*r) for r in found]

    def pick(self, index: int, types: Iterable[str] = MAPPED_TYPES) -> Row | None:
        rows = self.rows(types)
        return rows[index % len(rows)] if rows else None

    def mapped_entries_in(self, environment: str) -> int:
        return sum(
            1
            for r in self.rows((*LIST_TYPES, "sector_industry_map"))
            if r.normalised_environment == environment
        )

    def insert(
        self,
        type_: str,
        key: str,
        name: str,
        value: Any,
        environment: str,
        *,
        updated_at: datetime | str | None = "now",
    ) -> bool:
        """Insert a row; False (and no change) when it would break the legacy unique key."""
        stamp = self.tick()
        updated = stamp if updated_at == "now" else updated_at
        try:
            with self.conn.transaction():
                self.conn.execute(
                    "insert into public.cache_entries"
                    " (type, name, key, value, environment, created_at, updated_at)"
                    " values (%s, %s, %s, %s::jsonb, %s, %s, %s)",
                    (type_, name, key, json.dumps(value), environment, stamp, updated),
                )
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def rewrite(
        self,
        row: Row,
        *,
        value: Any = None,
        key: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        updated: bool = True,
    ) -> bool:
        """Delete the row and insert its new version (new id), as the loaders do."""
        try:
            with self.conn.transaction():
                self.conn.execute("delete from public.cache_entries where id = %s", (row.id,))
                stamp = self.tick()
                self.conn.execute(
                    "insert into public.cache_entries"
                    " (type, name, key, value, environment, created_at, updated_at)"
                    " values (%s, %s, %s, %s::jsonb, %s, %s, %s)",
                    (
                        row.type,
                        row.name if name is None else name,
                        row.key if key is None else key,
                        json.dumps(row.value if value is None else value),
                        row.environment if environment is None else environment,
                        stamp,
                        stamp if updated else None,
                    ),
                )
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def delete(self, row: Row) -> None:
        self.conn.execute("delete from public.cache_entries where id = %s", (row.id,))


def members_of(row: Row) -> tuple[list[Any], Callable[[list[Any]], Any]] | None:
    """A list entry's member list and a function that puts a new list back in its shape."""
    value = row.value
    if isinstance(value, list):
        return value, lambda new: new
    if isinstance(value, dict):
        for key in ("holdings", "symbols", "stocks", "etfs"):
            if isinstance(value.get(key), list):
                return value[key], lambda new, key=key: {**value, key: new}
    return None


def symbol_of(element: Any) -> Any:
    if isinstance(element, dict):
        return element.get("symbol", element.get("ticker"))
    return element


SYMBOLS = ["AAPL", "MSFT", "NVDA", "XOM", "CVX", "MARA", "NEM", "BRK.B", "BF-B", " tsla "]
ODD_ELEMENTS = ["", "TOOLONGSYMBOL", "ÄPPL", 42, None, {"name": "no symbol"}]
WEIGHTS: list[dict[str, Any]] = [
    {"weight": 0.25},
    {"weight": 0.12345},
    {"weight_pct": 12.5},
    {"weight": -0.1},
    {"weight": 1.5},
    {"weight": "0.2"},
    {},
]


class Change:
    """One source mutation; `apply` returns a short description of what it did."""

    def apply(self, source: Source) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class AddSymbol(Change):
    pick: int
    element: Any

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        found = members_of(row) if row else None
        if row is None or found is None:
            return "no list entry"
        members, shaped = found
        element = self.element
        if any(isinstance(m, dict) for m in members) and isinstance(element, str):
            element = {"ticker" if row.type == "etf_universe" else "symbol": element}
        source.rewrite(row, value=shaped([*members, element]))
        return f"{row.type}:{row.key} + {element!r}"


@dataclass(frozen=True)
class RemoveSymbol(Change):
    pick: int
    position: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        found = members_of(row) if row else None
        if row is None or found is None or not found[0]:
            return "no list entry with members"
        members, shaped = found
        drop = self.position % len(members)
        source.rewrite(row, value=shaped(members[:drop] + members[drop + 1 :]))
        return f"{row.type}:{row.key} - {members[drop]!r}"


@dataclass(frozen=True)
class ReorderSymbols(Change):
    pick: int
    rotate: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        found = members_of(row) if row else None
        if row is None or found is None or len(found[0]) < 2:
            return "no list entry to reorder"
        members, shaped = found
        turn = 1 + self.rotate % (len(members) - 1)
        source.rewrite(row, value=shaped(members[turn:] + members[:turn]))
        return f"{row.type}:{row.key} rotated by {turn}"


@dataclass(frozen=True)
class SetWeight(Change):
    pick: int
    position: int
    weight: tuple[tuple[str, Any], ...]

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        found = members_of(row) if row else None
        if row is None or found is None or not found[0]:
            return "no list entry with members"
        members, shaped = found
        at = self.position % len(members)
        symbol = symbol_of(members[at])
        element = {"symbol": symbol, **dict(self.weight)}
        source.rewrite(row, value=shaped([*members[:at], element, *members[at + 1 :]]))
        return f"{row.type}:{row.key} element {at + 1} = {element!r}"


@dataclass(frozen=True)
class AddEntry(Change):
    cache_type: str
    key: str
    name: str
    symbols: tuple[Any, ...]
    environment: str

    def apply(self, source: Source) -> str:
        symbols = list(self.symbols)
        values = {
            "etf_holdings": {"holdings": symbols, "last_updated": "2025-12-06T09:30:00"},
            "theme_definition": {"description": f"{self.name} theme", "symbols": symbols},
            "stock_universe": symbols,
            "etf_universe": {"symbols": symbols},
            "sector_industry_map": {"industries": ["Misc"], "description": self.name},
            "stock_metadata": {"sector": self.name, "industry": "Misc"},
        }
        done = source.insert(
            self.cache_type, self.key, self.name, values[self.cache_type], self.environment
        )
        return f"{self.cache_type}:{self.key} {'added' if done else 'not added (exists)'}"


@dataclass(frozen=True)
class DeleteEntry(Change):
    pick: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None or (
            row.type != "stock_metadata"
            and source.mapped_entries_in(row.normalised_environment) <= 3
        ):
            return "kept (its environment would be almost empty)"
        source.delete(row)
        return f"{row.type}:{row.key} ({row.environment}) deleted"


@dataclass(frozen=True)
class RenameEntry(Change):
    """A new display name (the cache row's `name`): an ETF's description, every provenance."""

    pick: int
    name: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to rename"
        done = source.rewrite(row, name=self.name)
        return f"{row.type}:{row.key} named {self.name!r}" + ("" if done else " (conflict)")


@dataclass(frozen=True)
class RekeyEntry(Change):
    """A new key: the old group goes, a new group (new id) comes."""

    pick: int
    key: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        if row is None:
            return "nothing to re-key"
        done = source.rewrite(row, key=self.key)
        return f"{row.type}:{row.key} re-keyed {self.key!r}" + ("" if done else " (conflict)")


@dataclass(frozen=True)
class DuplicateKey(Change):
    """The same (type, key, environment) under a second name: the newest wins."""

    pick: int
    name: str
    when: str  # "newer", "older" or "null" (updated_at NULL, created long ago)
    drop: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        if row is None:
            return "nothing to duplicate"
        found = members_of(row)
        value = row.value
        if found is not None and found[0]:
            members, shaped = found
            value = shaped(members[: self.drop % len(members)])
        stamp = source.tick()
        updated_at = {"newer": stamp, "older": BASE_TIME, "null": None}[self.when]
        if self.when != "newer":
            # created long ago too, so coalesce(updated_at, created_at) is old
            done = _insert_at(source, row, self.name, value, BASE_TIME, updated_at)
        else:
            done = source.insert(row.type, row.key, self.name, value, row.environment)
        return f"{row.type}:{row.key} also as {self.name!r} ({self.when})" + (
            "" if done else " (conflict)"
        )


def _insert_at(
    source: Source, row: Row, name: str, value: Any, created: datetime, updated: datetime | None
) -> bool:
    try:
        with source.conn.transaction():
            source.conn.execute(
                "insert into public.cache_entries"
                " (type, name, key, value, environment, created_at, updated_at)"
                " values (%s, %s, %s, %s::jsonb, %s, %s, %s)",
                (row.type, name, row.key, json.dumps(value), row.environment, created, updated),
            )
    except psycopg.errors.UniqueViolation:
        return False
    return True


@dataclass(frozen=True)
class SwitchShape(Change):
    """A universe or holdings list rewritten in another legacy shape (same symbols)."""

    pick: int
    shape: str  # "array", "symbols", "objects"

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, LIST_TYPES)
        found = members_of(row) if row else None
        if row is None or found is None:
            return "no list entry"
        members = [symbol_of(m) for m in found[0]]
        if row.type in ("stock_universe", "etf_universe"):
            key = "stocks" if row.type == "stock_universe" else "etfs"
            value: Any = {
                "array": members,
                "symbols": {"symbols": members, "count": len(members)},
                "objects": {key: [{"ticker": m} for m in members]},
            }[self.shape]
        else:
            listed = "holdings" if row.type == "etf_holdings" else "symbols"
            rest = {k: v for k, v in row.value.items() if k != listed}
            elements = members if self.shape != "objects" else [{"symbol": m} for m in members]
            value = {**rest, listed: elements}
        source.rewrite(row, value=value)
        return f"{row.type}:{row.key} as {self.shape}"


@dataclass(frozen=True)
class NullUpdatedAt(Change):
    """Re-inserted by an old loader that leaves updated_at NULL (content unchanged)."""

    pick: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to touch"
        source.rewrite(row, updated=False)
        return f"{row.type}:{row.key} updated_at NULL"


@dataclass(frozen=True)
class MoveEntry(Change):
    """To another environment, or to a respelled or invalid environment spelling."""

    pick: int
    environment: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None or row.environment == self.environment:
            return "nothing to move"
        leaving = row.normalised_environment
        if (
            row.type != "stock_metadata"
            and leaving != self.environment.strip().upper()
            and source.mapped_entries_in(leaving) <= 3
        ):
            return "kept (its environment would be almost empty)"
        done = source.rewrite(row, environment=self.environment)
        return f"{row.type}:{row.key} moved {row.environment!r} -> {self.environment!r}" + (
            "" if done else " (conflict)"
        )


@dataclass(frozen=True)
class ChangeSector(Change):
    pick: int
    sector: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, ("stock_metadata",))
        if row is None:
            return "no stock"
        value = {**row.value, "sector": self.sector} if isinstance(row.value, dict) else {}
        source.rewrite(row, value=value)
        return f"stock {row.key} sector {self.sector!r}"


@dataclass(frozen=True)
class SetLastUpdated(Change):
    pick: int
    stamp: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick, ("etf_holdings", "theme_definition"))
        if row is None or not isinstance(row.value, dict):
            return "nothing to stamp"
        source.rewrite(row, value={**row.value, "last_updated": self.stamp})
        return f"{row.type}:{row.key} last_updated {self.stamp!r}"


@dataclass(frozen=True)
class EditInPlace(Change):
    """An UPDATE of the row's key, type or environment in place (same id, same stamps): what
    a hand-run fix does, and what no delete-and-re-insert shows.  Every entry type,
    stock_metadata included."""

    pick: int
    column: str  # "key", "type" or "environment"
    value: str

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to edit"
        leaving = row.normalised_environment
        if (
            self.column != "key"
            and row.type != "stock_metadata"
            and source.mapped_entries_in(leaving) <= 3
        ):
            return "kept (its environment would be almost empty)"
        try:
            with source.conn.transaction():
                source.conn.execute(
                    sql.SQL("update public.cache_entries set {} = %s where id = %s").format(
                        sql.Identifier(self.column)
                    ),
                    (self.value, row.id),
                )
        except psycopg.errors.UniqueViolation:
            return f"{row.type}:{row.key} {self.column} := {self.value!r} (conflict)"
        return f"{row.type}:{row.key} ({row.environment}) {self.column} := {self.value!r} in place"


@dataclass(frozen=True)
class Reinsert(Change):
    """Deleted and inserted again with the same content (new id, new stamps)."""

    pick: int

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to re-insert"
        source.rewrite(row)
        return f"{row.type}:{row.key} ({row.environment}) deleted and re-inserted"


@dataclass(frozen=True)
class ContestName(Change):
    """One of the entries that all become the CUSTOM group `etf_late` as a person reads the
    name (a trailing space or a zero-width space is no other name): which arrives first is up
    to the sequence."""

    cache_type: str  # "etf_universe" (key late) or "stock_universe" (key etf_late)
    environment: str
    symbols: tuple[Any, ...]
    spelling: str = ""  # "", " " or "\u200b", added to the key

    def apply(self, source: Source) -> str:
        key = ("late" if self.cache_type == "etf_universe" else "etf_late") + self.spelling
        value = {"symbols": list(self.symbols)}
        done = source.insert(self.cache_type, key, "Contested", value, self.environment)
        return f"{self.cache_type}:{key!r} ({self.environment}) " + (
            "arrives" if done else "not added (exists)"
        )


@dataclass(frozen=True)
class AddMultiListEntry(Change):
    """An entry of any list type whose value has several member lists (symbols, stocks,
    etfs, holdings)."""

    cache_type: str
    key: str
    lists: tuple[tuple[str, tuple[Any, ...]], ...]
    environment: str

    def apply(self, source: Source) -> str:
        value: dict[str, Any] = {}
        for name, symbols in self.lists:
            value[name] = [s if name == "symbols" else {"ticker": s} for s in symbols]
        done = source.insert(self.cache_type, self.key, "Several lists", value, self.environment)
        return f"{self.cache_type}:{self.key} {sorted(value)} " + ("added" if done else "exists")


@dataclass(frozen=True)
class ArbitraryJson(Change):
    """Any JSON (hypothesis's recursive strategy) in one field of an entry of any type."""

    pick: int
    field: str  # "(value)", "(element)" or a key of the value
    value: Any

    def apply(self, source: Source) -> str:
        row = source.pick(self.pick)
        if row is None:
            return "nothing to change"
        if self.field == "(value)":
            new: Any = self.value
        elif self.field == "(element)":
            found = members_of(row)
            if found is None:
                return f"{row.type}:{row.key} has no list"
            members, shaped = found
            at = self.pick % (len(members) + 1)
            new = shaped([*members[:at], self.value, *members[at + 1 :]])
        else:
            base = row.value if isinstance(row.value, dict) else {}
            new = {**base, self.field: self.value}
        source.rewrite(row, value=new)
        return f"{row.type}:{row.key} {self.field} = {self.value!r}"


@dataclass(frozen=True)
class LegacyGroupRow(Change):
    """A legacy script inserts a group (no metadata.source) and a member into the tables."""

    name: str
    group_type: str
    environment: str

    def apply(self, source: Source) -> str:
        try:
            with source.conn.transaction():
                found = source.conn.execute(
                    "insert into public.definition_groups"
                    " (name, type, description, metadata, environment)"
                    " values (%s, %s, 'inserted by a script', '{\"by\": \"script\"}', %s)"
                    " returning id",
                    (self.name, self.group_type, self.environment),
                ).fetchone()
                assert found is not None
                source.conn.execute(
                    "insert into public.group_memberships (group_id, symbol, metadata)"
                    " values (%s, 'AAPL', '{\"position\": \"top\"}')",
                    (found[0],),
                )
        except psycopg.errors.UniqueViolation:
            return f"legacy row {self.group_type} {self.name!r} not inserted (name taken)"
        return f"legacy script inserts {self.group_type} {self.name!r} ({self.environment})"


# --- other writers (docs/design.md §10): they change the two tables between runs -------------

OWNED_GROUPS_SQL = """
select g.id, g.name, g.type, g.environment from public.definition_groups g
where exists (select from public.migration_ledger_groups l where l.group_id = g.id)
order by g.id
"""
FOREIGN_GROUPS_SQL = """
select g.id, g.name, g.type, g.environment from public.definition_groups g
where not exists (select from public.migration_ledger_groups l where l.group_id = g.id)
order by g.id
"""
FOREIGN_MEMBERSHIPS_SQL = """
select m.id, m.symbol, g.name from public.group_memberships m
join public.definition_groups g on g.id = m.group_id
where not exists (select from public.migration_ledger_memberships l where l.membership_id = m.id)
order by m.id
"""


def _picked(conn: psycopg.Connection, query: str, pick: int) -> tuple[Any, ...] | None:
    rows = conn.execute(query).fetchall()
    return rows[pick % len(rows)] if rows else None


@dataclass(frozen=True)
class CopyGroup(Change):
    """Another writer copies a migrated group under another name, metadata (and so its
    provenance, metadata.source) and members included."""

    pick: int

    def apply(self, source: Source) -> str:
        found = _picked(source.conn, OWNED_GROUPS_SQL, self.pick)
        if found is None:
            return "no group to copy"
        group_id, name, group_type, environment = found
        copy_name = f"{name[:95]}_copy"
        try:
            with source.conn.transaction():
                (copy_id,) = source.conn.execute(  # type: ignore[misc]
                    "insert into public.definition_groups"
                    " (name, type, description, metadata, liquidity_filter, environment)"
                    " select %s, type, 'a copy', metadata, liquidity_filter, environment"
                    " from public.definition_groups where id = %s returning id",
                    (copy_name, group_id),
                ).fetchone()
                source.conn.execute(
                    "insert into public.group_memberships (group_id, symbol, weight, metadata)"
                    " select %s, symbol, weight, metadata from public.group_memberships"
                    " where group_id = %s",
                    (copy_id, group_id),
                )
        except psycopg.errors.UniqueViolation:
            return f"copy of {group_type} {name!r} not made (name taken)"
        return f"another writer copies {group_type} {name!r} ({environment}) as {copy_name!r}"


@dataclass(frozen=True)
class EditMigratedGroup(Change):
    """Another writer edits a migrated group's description and metadata in place (the next
    build of its environment puts them back)."""

    pick: int

    def apply(self, source: Source) -> str:
        found = _picked(source.conn, OWNED_GROUPS_SQL, self.pick)
        if found is None:
            return "no group to edit"
        group_id, name, group_type, environment = found
        source.conn.execute(
            "update public.definition_groups set description = 'fixed by hand',"
            ' metadata = metadata || \'{"note": "by hand"}\' where id = %s',
            (group_id,),
        )
        return f"another writer edits {group_type} {name!r} ({environment})"


@dataclass(frozen=True)
class ChangeForeignRows(Change):
    """Another writer changes its own rows: updates or deletes one of its groups, adds a
    member to it, reweights or deletes one of its memberships."""

    pick: int
    action: str  # "update group", "delete group", "add member", "reweight member", "drop member"

    def apply(self, source: Source) -> str:
        member = self.action.endswith("member") and self.action != "add member"
        found = _picked(
            source.conn, FOREIGN_MEMBERSHIPS_SQL if member else FOREIGN_GROUPS_SQL, self.pick
        )
        if found is None:
            return f"nothing of another writer's to {self.action}"
        row_id, name = found[0], found[1]
        statement = {
            "update group": "update public.definition_groups"
            " set description = 'updated by its writer' where id = %s",
            "delete group": "delete from public.definition_groups where id = %s",
            "add member": "insert into public.group_memberships (group_id, symbol)"
            " values (%s, 'LEGX') on conflict do nothing",
            "reweight member": "update public.group_memberships set weight = 0.25 where id = %s",
            "drop member": "delete from public.group_memberships where id = %s",
        }[self.action]
        source.conn.execute(statement, (row_id,))
        return f"another writer: {self.action} ({name!r})"


MIGRATED_GROUPS_SQL = """
select l.group_id, g.name from public.migration_ledger_groups l
join public.definition_groups g on g.id = l.group_id
order by l.group_id
"""

# (environment, group type, source type, source key) -> symbols another writer's rows hold
SHARED_GROUPS_SQL = """
select l.environment, l.group_type, l.source_type, l.source_key, array_agg(m.symbol)
from public.migration_ledger_groups l
join public.group_memberships m on m.group_id = l.group_id
where not exists (
    select from public.migration_ledger_memberships lm where lm.membership_id = m.id
)
group by 1, 2, 3, 4
"""


@dataclass(frozen=True)
class AddForeignMember(Change):
    """Another writer adds a member to one of the migration's groups: a symbol of its own, or
    one the source lists (or will list), which the migration then does not write twice."""

    pick: int
    symbol: str

    def apply(self, source: Source) -> str:
        found = _picked(source.conn, MIGRATED_GROUPS_SQL, self.pick)
        if found is None:
            return "no migrated group to add a member to"
        added = source.conn.execute(
            "insert into public.group_memberships (group_id, symbol) values (%s, %s)"
            " on conflict do nothing",
            (found[0], self.symbol),
        ).rowcount
        return f"another writer adds {self.symbol} to {found[1]!r}" + ("" if added else " (there)")


def shared_groups(conn: psycopg.Connection) -> dict[tuple[Any, ...], set[str]]:
    """The migration's groups that hold another writer's memberships, with their symbols."""
    return {tuple(row[:4]): set(row[4]) for row in conn.execute(SHARED_GROUPS_SQL).fetchall()}


def other_writers() -> st.SearchStrategy[Change]:
    """What other writers do to the two tables between runs."""
    picks = st.integers(min_value=0, max_value=40)
    return st.one_of(
        st.builds(CopyGroup, pick=picks),
        st.builds(EditMigratedGroup, pick=picks),
        st.builds(AddForeignMember, pick=picks, symbol=st.sampled_from(["LEGX", "AAPL", "NVDA"])),
        st.builds(
            ChangeForeignRows,
            pick=picks,
            action=st.sampled_from(
                ["update group", "delete group", "add member", "reweight member", "drop member"]
            ),
        ),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON PostgreSQL can store (no NUL, no lone surrogate), small."""
    text = st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=8,
    )
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
        st.sampled_from(["AAPL", "msft", "2025-02-30", "2025-12-05T10:00:00+16:00"]),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
        ),
        max_leaves=6,
    )


def wide_changes() -> st.SearchStrategy[Change]:
    """changes() plus the hostile alphabet: in-place edits of key, type and environment for
    every entry type, re-inserts, the arrival order of colliding names, legacy rows in the
    target tables, several member lists, and arbitrary JSON in every field."""
    picks = st.integers(min_value=0, max_value=40)
    environments = st.sampled_from(["DEFAULT", "PROD"])
    symbol_lists = st.lists(st.sampled_from(SYMBOLS), min_size=0, max_size=3).map(tuple)
    hostile = st.one_of(
        st.builds(
            EditInPlace,
            pick=picks,
            column=st.just("key"),
            value=st.sampled_from(["OXY", "XOM", "etf_late", "renamed_key", "\u200b", "SPY"]),
        ),
        st.builds(
            EditInPlace,
            pick=picks,
            column=st.just("type"),
            value=st.sampled_from(
                ["stock_metadata", "etf_holdings", "ETF_HOLDINGS", "etf_universe ", "retired"]
            ),
        ),
        st.builds(
            EditInPlace,
            pick=picks,
            column=st.just("environment"),
            value=st.sampled_from(["PROD", "DEFAULT", "prod ", "dev"]),
        ),
        st.builds(Reinsert, pick=picks),
        st.builds(
            ContestName,
            cache_type=st.sampled_from(["etf_universe", "stock_universe"]),
            environment=environments,
            symbols=symbol_lists,
            spelling=st.sampled_from(["", " ", "\u200b"]),
        ),
        st.builds(
            AddMultiListEntry,
            cache_type=st.sampled_from(
                ["stock_universe", "etf_universe", "etf_holdings", "theme_definition"]
            ),
            key=st.sampled_from(["multi", "theme_crypto", "SPY"]),
            lists=st.lists(
                st.tuples(st.sampled_from(["symbols", "stocks", "etfs", "holdings"]), symbol_lists),
                min_size=2,
                max_size=3,
                unique_by=lambda pair: pair[0],
            ).map(tuple),
            environment=environments,
        ),
        st.builds(
            ArbitraryJson,
            pick=picks,
            field=st.sampled_from(
                [
                    "(value)",
                    "(element)",
                    "last_updated",
                    "sector",
                    "industry",
                    "description",
                    "holdings",
                    "symbols",
                    "stocks",
                    "source",
                    "legacy_source",
                    "market_cap_threshold",
                ]
            ),
            value=json_values(),
        ),
        st.builds(
            LegacyGroupRow,
            name=st.sampled_from(["NEWETF", "SPY", "etf_late", "energy"]),
            group_type=st.sampled_from(["ETF", "CUSTOM", "SECTOR"]),
            environment=environments,
        ),
        other_writers(),
    )
    return st.one_of(changes(), hostile)


def changes() -> st.SearchStrategy[Change]:
    """Every kind of source change, with arguments that shrink towards simple ones."""
    picks = st.integers(min_value=0, max_value=40)
    elements = st.one_of(st.sampled_from(SYMBOLS), st.sampled_from(ODD_ELEMENTS))
    weights = st.sampled_from(WEIGHTS).map(lambda w: tuple(w.items()))
    symbol_lists = st.lists(st.sampled_from(SYMBOLS), min_size=0, max_size=4).map(tuple)
    new_entries = st.one_of(
        st.builds(
            AddEntry,
            cache_type=st.sampled_from(LIST_TYPES),
            key=st.sampled_from(["SPY", "IWM", "crypto_miners", "theme_crypto", "etf_tracked"]),
            name=st.sampled_from(["Alpha", "Beta"]),
            symbols=symbol_lists,
            environment=st.sampled_from(["DEFAULT", "PROD"]),
        ),
        st.builds(
            AddEntry,
            cache_type=st.just("stock_metadata"),
            key=st.sampled_from(["AMZN", "NEM", "aapl"]),
            name=st.sampled_from(["Energy", "information technology", "Utilities"]),
            symbols=st.just(()),
            environment=st.sampled_from(["DEFAULT", "PROD"]),
        ),
        st.builds(
            AddEntry,
            cache_type=st.just("sector_industry_map"),
            key=st.sampled_from(["utilities", "energy"]),
            name=st.sampled_from(["Utilities", "Energy"]),
            symbols=st.just(()),
            environment=st.sampled_from(["DEFAULT", "PROD"]),
        ),
    )
    return st.one_of(
        st.builds(AddSymbol, pick=picks, element=elements),
        st.builds(RemoveSymbol, pick=picks, position=picks),
        st.builds(ReorderSymbols, pick=picks, rotate=picks),
        st.builds(SetWeight, pick=picks, position=picks, weight=weights),
        new_entries,
        st.builds(DeleteEntry, pick=picks),
        st.builds(RenameEntry, pick=picks, name=st.sampled_from(["Renamed", "Beta"])),
        st.builds(RekeyEntry, pick=picks, key=st.sampled_from(["renamed_key", "etf_tracked"])),
        st.builds(
            DuplicateKey,
            pick=picks,
            name=st.sampled_from(["Second name", "Third name"]),
            when=st.sampled_from(["newer", "older", "null"]),
            drop=picks,
        ),
        st.builds(SwitchShape, pick=picks, shape=st.sampled_from(["array", "symbols", "objects"])),
        st.builds(NullUpdatedAt, pick=picks),
        st.builds(
            MoveEntry, pick=picks, environment=st.sampled_from(["PROD", "DEFAULT", "prod ", "dev"])
        ),
        st.builds(
            ChangeSector,
            pick=picks,
            sector=st.sampled_from(["Energy", "INFORMATION TECHNOLOGY", "Unknown", ""]),
        ),
        st.builds(
            SetLastUpdated,
            pick=picks,
            stamp=st.sampled_from(["2025-12-07T08:00:00Z", "2025-02-30", "yesterday"]),
        ),
    )


# --- databases and builds -------------------------------------------------------------------


@dataclass
class ProjectCopy(DbtProject):
    """DbtProject for a copy of the project in another directory (own manifests)."""

    project_dir: Path = PROJECT_ROOT

    def _common(self, target: str) -> list[str]:
        args = super()._common(target)
        return [str(self.project_dir) if a == str(PROJECT_ROOT) else a for a in args]


def copy_project(destination: Path) -> Path:
    """The dbt project's own files (no virtualenv, data, logs or Python tests) in a new place."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "models", "macros", "seeds", "analyses", "tests/dbt"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        elif source.exists():
            shutil.copyfile(source, destination / name)
    return destination


def break_macro(project_dir: Path, macro: str, body: str) -> None:
    """Replace one macro's body in a project copy (for mutation tests of the property)."""
    for path in (project_dir / "macros").rglob("*.sql"):
        text = path.read_text()
        pattern = re.compile(
            r"(\{%-?\s*macro\s+" + re.escape(macro) + r"\(.*?\)\s*-?%\}).*?(\{%-?\s*endmacro)",
            re.DOTALL,
        )
        if pattern.search(text):
            path.write_text(pattern.sub(lambda m: m.group(1) + body + m.group(2), text, count=1))
            return
    raise AssertionError(f"macro {macro} not found in {project_dir / 'macros'}")


def environment_part(state: Published, environment: str) -> dict[str, dict[Any, Any]]:
    """One environment's rows of a Published snapshot, everything included."""

    def mine(mapping: dict[Any, Any], offset: int = 0) -> dict[Any, Any]:
        return {k: v for k, v in mapping.items() if k[offset] == environment}

    return {
        "groups": mine(state.groups),
        "memberships": mine(state.memberships),
        "group_ids": mine(state.group_ids),
        "membership_ids": mine(state.membership_ids),
        "stamps": mine(state.stamps, 1),
    }


# a cache row's environment and type as the models read them (macros/sql_helpers/normalisation.sql)
CACHE_ENVIRONMENT = targets.environment_of(sql.Identifier("environment"))
CACHE_TYPE = targets.read_as("normalised_cache_type", sql.Identifier("type"))


def cache_content(conn: psycopg.Connection, environment: str) -> tuple[tuple[Any, ...], ...]:
    """Every column but the id of every cache row a build of `environment` publishes from
    (those whose environment reads as it), in id order: what a fresh build's tables see."""
    return tuple(
        conn.execute(
            sql.SQL(
                "select type, name, key, value::text, environment, description, created_at,"
                " updated_at from public.cache_entries where {} = %s order by id"
            ).format(CACHE_ENVIRONMENT),
            (environment,),
        ).fetchall()
    )


# the alphabet's contested name as read (docs/design.md §2: NFC, invisible characters
# removed, surrounding white space trimmed), for the spellings ContestName writes
_READ_AS_ETF_LATE = """
btrim(replace({name}, U&'\\200B', ''), ' ') = 'etf_late'
"""


def contested_name_holder(
    conn: psycopg.Connection, environment: str
) -> tuple[tuple[Any, ...], ...]:
    """The cache rows (as cache_content gives them) of the entry whose group holds the name
    the alphabet contests (ContestName: CUSTOM `etf_late` as a person reads it) now, when a
    rival is in the cache too: the holder keeps the name through its loader's delete and
    re-insert, which a build from nothing cannot know."""
    group_name = (
        "case when t.cache_type = 'etf_universe' and not starts_with(t.key, 'etf_')"
        " then 'etf_' || t.key else t.key end"
    )
    return tuple(
        conn.execute(
            sql.SQL(
                "with typed as (select {cache_type} as cache_type, *"
                "   from public.cache_entries"
                "   where {cache_environment} = %s),"
                " contestants as (select distinct t.cache_type, t.key from typed t"
                "   where t.cache_type in ('etf_universe', 'stock_universe')"
                "   and " + _READ_AS_ETF_LATE.format(name=group_name).strip() + ")"
                " select c.type, c.name, c.key, c.value::text, c.environment, c.description,"
                " c.created_at, c.updated_at from typed c"
                " join public.migration_ledger_groups l"
                "   on l.source_type = c.cache_type and l.source_key = c.key"
                " join public.definition_groups g on g.id = l.group_id"
                " where g.type = 'CUSTOM' and l.environment = %s and g.environment = %s"
                " and "
                + _READ_AS_ETF_LATE.format(name="g.name").strip()
                + " and (select count(*) from contestants) >= 2"
                " order by c.id",
            ).format(cache_type=CACHE_TYPE, cache_environment=CACHE_ENVIRONMENT),
            (environment, environment, environment),
        ).fetchall()
    )


def copy_cache(rows: Iterable[tuple[Any, ...]], conn: psycopg.Connection) -> None:
    """Give a database exactly these cache rows (as cache_content returns them)."""
    ensure_table(conn)
    conn.execute("truncate public.cache_entries")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.cache_entries"
            " (type, name, key, value, environment, description, created_at, updated_at)"
            " values (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
            list(rows),
        )


LEGACY_ROWS_SQL = """
select g.name, g.type, g.description, g.metadata::text, g.liquidity_filter::text,
       g.environment, g.last_update,
       coalesce((select json_agg(json_build_array(m.symbol, m.weight, m.metadata)
                                 order by m.symbol)::text
                 from public.group_memberships m where m.group_id = g.id), '[]')
from public.definition_groups g
where not exists (select from public.migration_ledger_groups l where l.group_id = g.id)
order by g.id
"""

FOREIGN_ROWS_SQL = """
select 'group', g.id, g::text, g.xmin::text from public.definition_groups g
where not exists (select from public.migration_ledger_groups l where l.group_id = g.id)
union all
select 'membership', m.id, m::text, m.xmin::text from public.group_memberships m
where not exists (select from public.migration_ledger_memberships l where l.membership_id = m.id)
order by 1, 2
"""


def foreign_rows(conn: psycopg.Connection) -> tuple[tuple[Any, ...], ...]:
    """Every row of the two tables another writer wrote (not in the ledger), with its row
    version: a build must leave each exactly as its writer left it."""
    return tuple(conn.execute(FOREIGN_ROWS_SQL).fetchall())


def legacy_rows(conn: psycopg.Connection) -> tuple[tuple[Any, ...], ...]:
    """The groups other writers put into the two tables (not in the migration's ledger, with
    their members), with the last_update the column's default gave them (a reference copies
    it: the migration never writes these rows, so theirs must match to the microsecond)."""
    return tuple(conn.execute(LEGACY_ROWS_SQL).fetchall())


def insert_legacy_rows(conn: psycopg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    for row in rows:
        name, group_type, description, metadata, liquidity, environment, last_update, members = row
        found = conn.execute(
            "insert into public.definition_groups"
            " (name, type, description, metadata, liquidity_filter, environment, last_update)"
            " values (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s) returning id",
            (name, group_type, description, metadata, liquidity, environment, last_update),
        ).fetchone()
        assert found is not None
        for symbol, weight, member_metadata in json.loads(members):
            conn.execute(
                "insert into public.group_memberships (group_id, symbol, weight, metadata)"
                " values (%s, %s, %s, %s::jsonb)",
                (found[0], symbol, weight, json.dumps(member_metadata)),
            )


def seeded_name(reference: str) -> str:
    return f"{reference}_seeded"


def create_seeded_database(pg_server: PgServer, project: DbtProject) -> None:
    """A database holding only the seed, for every target: the start of each fresh build
    (the seed is static data; loading it again for every reference cost a tenth of one)."""
    name = project.settings["PGDATABASE"]
    pg_server.recreate_database(name)
    for target in ENVIRONMENTS:
        project.invoke("seed", target=target, args=("--no-write-json",))
    pg_server.clone_database(name, seeded_name(name))


def fresh_build(
    pg_server: PgServer,
    project: DbtProject,
    target: str,
    rows: Iterable[tuple[Any, ...]],
    legacy: tuple[tuple[Any, ...], ...] = (),
    holders: tuple[tuple[Any, ...], ...] = (),
) -> Published:
    """Build the two tables from nothing, for one target, on a copy of the database that
    create_seeded_database made.  Rows other writers put into the tables are there first (a
    build of an empty cache creates the tables for them).  ``holders``: the cache rows of the
    entry whose group holds the contested name now; a first build of them alone gives them
    the name, as the tables under test had it before the step (the current holder keeps a
    contested name, whatever its cache row's stamps: docs/design.md §2)."""
    name = project.settings["PGDATABASE"]
    pg_server.clone_database(seeded_name(name), name)
    with connect(project.settings) as conn:
        if legacy:
            copy_cache((), conn)
            project.build(target, args=REFERENCE_ARGS)
            insert_legacy_rows(conn, legacy)
        if holders:
            copy_cache(holders, conn)
            project.build(target, args=REFERENCE_ARGS)
        copy_cache(rows, conn)
        project.build(target, args=REFERENCE_ARGS)
        return published(conn)


def _reference_worker(
    pipe: Connection, pg_server: PgServer, settings: dict[str, str], work_dir: str, project: str
) -> None:
    """A child process that makes fresh builds while the parent runs the incremental one."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "profiles.example.yml", work / "profiles.yml")
    dbt = ProjectCopy(settings, work, {}, project_dir=Path(project))
    for target in ENVIRONMENTS:
        dbt._manifest(target)  # parse while the parent builds its template
    create_seeded_database(pg_server, dbt)
    pipe.send(("ready", None))
    while (message := pipe.recv()) is not None:
        target, rows, legacy, holders = message
        try:
            pipe.send(("ok", fresh_build(pg_server, dbt, target, rows, legacy, holders)))
        except Exception as exc:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))


class ReferenceWorker:
    """Runs fresh reference builds in a separate process, overlapping the incremental ones."""

    def __init__(
        self, pg_server: PgServer, settings: Mapping[str, str], work_dir: Path, project: Path
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=_reference_worker,
            args=(child, pg_server, dict(settings), str(work_dir), str(project)),
            daemon=True,
        )
        self.process.start()
        self.ready = False

    def submit(
        self,
        target: str,
        rows: tuple[tuple[Any, ...], ...],
        legacy: tuple[tuple[Any, ...], ...] = (),
        holders: tuple[tuple[Any, ...], ...] = (),
    ) -> None:
        if not self.ready:
            self._receive()
            self.ready = True
        self.pipe.send((target, rows, legacy, holders))

    def result(self) -> Published:
        return self._receive()

    def _receive(self) -> Any:
        if not self.pipe.poll(600):
            raise TimeoutError("the reference build worker did not answer within 600 s")
        status, payload = self.pipe.recv()
        if status == "error":
            raise DbtRunFailed(f"reference build failed: {payload}")
        return payload

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(None)
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


@dataclass
class Harness:
    """The databases and dbt projects one property run uses (see the module docstring)."""

    pg_server: PgServer
    incremental: DbtProject
    template_name: str
    reference_name: str
    work_dir: Path
    project_dir: Path = PROJECT_ROOT
    build_args: tuple[str, ...] = BUILD_ARGS
    step_args: tuple[str, ...] = STEP_ARGS
    references: dict[Any, Published] = field(default_factory=dict)
    worker: ReferenceWorker | None = None
    parallel: bool = True
    local_reference: DbtProject | None = None
    pending: Any = None
    builds: int = 0
    reference_builds: int = 0
    examples: int = 0
    steps: list[int] = field(default_factory=list)

    @property
    def incremental_name(self) -> str:
        return self.incremental.settings["PGDATABASE"]

    def create_template(self) -> None:
        """Build the starting cache for both environments once; later examples clone it."""
        if self.parallel:
            self.worker = ReferenceWorker(
                self.pg_server,
                self.pg_server.database_settings(self.reference_name),
                self.work_dir / f"reference-{self.reference_name}",
                self.project_dir,
            )
        else:
            self.local_reference = ProjectCopy(
                self.pg_server.database_settings(self.reference_name),
                self.work_dir,
                self.incremental.manifests,
                project_dir=self.project_dir,
            )
            create_seeded_database(self.pg_server, self.local_reference)
        self.pg_server.recreate_database(self.incremental_name)
        with connect(self.incremental.settings) as conn:
            starting_cache(LegacyCache(conn).create())
        for target in ENVIRONMENTS:
            self.incremental.build(target, args=self.build_args)
        self.pg_server.clone_database(self.incremental_name, self.template_name)

    def start_example(self) -> psycopg.Connection:
        self.examples += 1
        self.steps.append(0)
        if self.examples % 10 == 0:
            # a long profile (-m slow) says how far it is; pytest -s shows it
            print(f"property: sequence {self.examples}, {self.builds} builds so far", flush=True)
        self.pg_server.clone_database(self.template_name, self.incremental_name)
        return connect(self.incremental.settings)

    def build(
        self,
        target: str,
        variables: Mapping[str, Any] | None = None,
        *,
        full_refresh: bool = False,
    ) -> None:
        self.builds += 1
        args = (*self.step_args, "--full-refresh") if full_refresh else self.step_args
        self.incremental.build(target, args=args, variables=variables)

    def start_fresh_build(self, conn: psycopg.Connection, target: str) -> None:
        """Start (in the worker) what a first build on an empty database makes of this cache."""
        environment = ENVIRONMENTS[target]
        key = (
            target,
            cache_content(conn, environment),
            legacy_rows(conn),
            contested_name_holder(conn, environment),
        )
        self.pending = key
        if key not in self.references:
            self.reference_builds += 1
            if self.worker is not None:
                self.worker.submit(target, key[1], key[2], key[3])
                self.references[key] = None  # type: ignore[assignment]
            else:
                assert self.local_reference is not None
                self.references[key] = fresh_build(
                    self.pg_server, self.local_reference, target, key[1], key[2], key[3]
                )

    def fresh_build(self) -> Published:
        """The result of the last start_fresh_build (memoised by cache content)."""
        key, self.pending = self.pending, None
        if self.references[key] is None:
            assert self.worker is not None
            self.references[key] = self.worker.result()
        return self.references[key]

    def drop(self) -> None:
        if self.worker is not None:
            self.worker.close()
        for name in (self.template_name, self.reference_name, seeded_name(self.reference_name)):
            self.pg_server.drop_database(name)


# --- the property ---------------------------------------------------------------------------


class PropertyViolation(AssertionError):
    pass


def check_step(
    *,
    environment: str,
    before: Published,
    after: Published,
    expected: Published,
    seen_group_ids: set[int],
    seen_membership_ids: set[int],
    shared: dict[tuple[Any, ...], set[str]] | None = None,
) -> None:
    """Everything one incremental build must have done to one environment's rows.

    ``shared``: the migration's groups that hold another writer's memberships (docs/design.md
    §10), which a fresh build cannot know: such a group whose entry is gone is kept, and a
    symbol another writer's row holds is not written again; both are left out of the
    comparison with the fresh build (that the other writer's rows are untouched is checked
    apart)."""
    mine, fresh = environment_part(after, environment), environment_part(expected, environment)
    old = environment_part(before, environment)
    problems = []
    shared = shared or {}
    kept = {k for k in shared if k in mine["groups"] and k not in fresh["groups"]}
    compared = {
        side: {
            "groups": {k: v for k, v in parts["groups"].items() if k not in kept},
            "memberships": {
                k: v
                for k, v in parts["memberships"].items()
                if k[:4] not in kept and k[4] not in shared.get(k[:4], ())
            },
        }
        for side, parts in (("mine", mine), ("fresh", fresh))
    }
    for part in ("groups", "memberships"):
        if compared["mine"][part] != compared["fresh"][part]:
            ours, theirs = compared["mine"][part], compared["fresh"][part]
            missing = theirs.keys() - ours.keys()
            extra = ours.keys() - theirs.keys()
            differ = [
                (k, ours[k], theirs[k])
                for k in sorted(ours.keys() & theirs.keys(), key=repr)
                if ours[k] != theirs[k]
            ]
            problems.append(
                f"{part} differ from a fresh build: missing {sorted(missing, key=repr)}, "
                f"extra {sorted(extra, key=repr)}, different {differ}"
            )
    for ids, seen in (("group_ids", seen_group_ids), ("membership_ids", seen_membership_ids)):
        survivors = old[ids].keys() & mine[ids].keys()
        moved = {k: (old[ids][k], mine[ids][k]) for k in survivors if old[ids][k] != mine[ids][k]}
        if moved:
            problems.append(f"surviving rows changed {ids}: {moved}")
        reused = {k: v for k, v in mine[ids].items() if k not in old[ids] and v in seen}
        if reused:
            problems.append(f"new rows reuse old {ids}: {reused}")
    for part, kind in (("groups", "group"), ("memberships", "membership")):
        for key, content in mine[part].items():
            stamp_key = (kind, *key)
            if key not in old[part]:
                continue
            first_old, last_old = old["stamps"][stamp_key]
            first_new, last_new = mine["stamps"][stamp_key]
            if first_old != first_new:
                problems.append(f"{kind} {key}: created/added stamp changed")
            if content == old[part][key] and last_old != last_new:
                problems.append(f"{kind} {key}: rewritten although its content did not change")
    if problems:
        raise PropertyViolation("\n".join(problems))


def other_environments(state: Published, environment: str) -> dict[str, dict[Any, Any]]:
    return {
        env: environment_part(state, env)
        for env in {k[0] for k in state.groups} | {"DEFAULT", "PROD"}
        if env != environment
    }


def build_outcome(harness: Harness, target: str, *, full_refresh: bool = False) -> str:
    """Run the incremental build; 'built', or 'guarded' when the mass-delete guard refused."""
    try:
        harness.build(target, full_refresh=full_refresh)
    except DbtRunFailed as failure:
        if "Mass-delete guard" in str(failure):
            return "guarded"
        raise
    return "built"
