"""A deterministic, realistic legacy ``cache_entries`` table, and a fast COPY loader for it.

The sample reproduces the real figures of docs/design.md §1 at scale 1: 24 ETFs with their exact
holdings counts, 20 themes, 11 GICS sectors with 53 industries, about 3,700 distinct symbols (a few
hundred real tickers, the rest generated), one ``stock_metadata`` entry per symbol, the three legacy
shapes of ``stock_universe`` / ``etf_universe``, a key stored twice under two names, NULL
``updated_at`` on every seventh row, unrelated cache types, and (DEFAULT only) two rows whose
environment the migration must reject. Everything derives from ``seed`` through private
``random.Random`` streams and a base time ``as_of``, so the same arguments always give the same rows
in the same order (and, loaded into a fresh table, the same ids).

Row stamps (``created_at`` / ``updated_at``) are laid out backwards from ``as_of``: the newest
write is ``as_of`` itself. ``generate_entries`` defaults to the fixed BASE_TIME (pure and
repeatable); ``load_sample`` defaults to the moment of loading, so a freshly loaded sample is
fresh to ``dbt source freshness``. The JSON values (``last_updated`` inside them included) never
depend on ``as_of``.

``scale`` N adds N - 1 copies of the whole universe (new generated tickers, same sectors, same
membership structure), so ETFs, themes, symbols and memberships all grow N-fold.

This module holds the public side (the rows as ``CacheEntry``, COPY, ``load_sample``); the rest
is beside it: the reference data in ``validation/sample_data/`` (read by
``validation/sample_reference.py``), the universe of stocks and who holds what in
``validation/sample_universe.py``, and what each row holds in ``validation/sample_drafts.py``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from validation.command import harness_command
from validation.errors import UserFacingError
from validation.sample_drafts import (
    BASE_TIME,
    LAST_UPDATED,
    MARKET_CAP_THRESHOLD,
    all_drafts,
    noise_drafts,
    stamps,
)
from validation.sample_reference import (
    ETFS,
    EXPECTED_ETF_HOLDINGS,
    EXPECTED_THEME_SIZES,
    SECTOR_KEYS,
    SECTOR_NAMES,
    THEMES,
)
from validation.sample_universe import AAPL_ETFS, UNIVERSE_SIZE
from validation.targets import ENVIRONMENTS

__all__ = [
    "AAPL_ETFS",
    "BASE_TIME",
    "COPY_COLUMNS",
    "EXPECTED_ETF_HOLDINGS",
    "EXPECTED_THEME_SIZES",
    "LAST_UPDATED",
    "MARKET_CAP_THRESHOLD",
    "MAX_SCALE",
    "SECTOR_KEYS",
    "SECTOR_NAMES",
    "TABLE_NAME",
    "UNIVERSE_SIZE",
    "VALID_ENVIRONMENTS",
    "CacheEntry",
    "LoadSummary",
    "Rebalance",
    "copy_rows",
    "ensure_table",
    "existing_rows",
    "generate_entries",
    "iter_copy_chunks",
    "load_sample",
    "noise_entries",
    "rebalance_etf",
    "write_entries",
]

VALID_ENVIRONMENTS: tuple[str, ...] = ENVIRONMENTS
MAX_SCALE = 1_000
TABLE_NAME = "cache_entries"
COPY_COLUMNS = (
    "type",
    "name",
    "key",
    "value",
    "environment",
    "description",
    "created_at",
    "updated_at",
)

CREATE_SCHEMA_SQL = sql.SQL("create schema if not exists {schema}")
CREATE_TABLE_SQL = sql.SQL(
    """create table if not exists {table} (
  id          serial primary key,
  type        varchar(50)  not null,
  name        varchar(100) not null,
  key         varchar(100) not null,
  value       jsonb        not null,
  environment varchar(10)  not null,
  description text,
  created_at  timestamptz  default current_timestamp,
  updated_at  timestamptz,
  constraint unique_cache_entry unique (type, name, key, environment)
)"""
)
COPY_SQL = sql.SQL("copy {table} ({columns}) from stdin")


# --- public data types ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One row of the legacy table (without its serial id)."""

    type: str
    name: str
    key: str
    value: Any  # serialised to JSON
    environment: str
    description: str | None
    created_at: datetime  # timezone-aware (UTC)
    updated_at: datetime | None


@dataclass(frozen=True)
class LoadSummary:
    """What ``load_sample`` wrote."""

    schema: str
    environments: tuple[str, ...]
    scale: int
    seed: int
    rows_by_type: dict[str, int]
    rows_by_environment: dict[str, int]
    deleted_rows: int
    generate_seconds: float
    copy_seconds: float
    elapsed_seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_environment.values())

    def __str__(self) -> str:
        per_env = ", ".join(f"{env} {n:,}" for env, n in self.rows_by_environment.items())
        return (
            f"{self.total_rows:,} cache_entries rows loaded into {self.schema} ({per_env}; "
            f"{self.deleted_rows:,} replaced) in {self.elapsed_seconds:.1f} s "
            f"(generate {self.generate_seconds:.1f} s, copy {self.copy_seconds:.1f} s)"
        )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while building many small acyclic containers (halves the time
    of a large scale: each collection would otherwise walk the whole growing heap)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_arguments(environment: str, scale: int, seed: int) -> None:
    if environment not in VALID_ENVIRONMENTS:
        raise UserFacingError(
            f"Unknown environment {environment!r}; use one of {', '.join(VALID_ENVIRONMENTS)}."
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise UserFacingError(f"The sample scale must be an integer from 1 to {MAX_SCALE}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserFacingError(f"The sample seed must be an integer, not {seed!r}.")


def generate_entries(
    environment: str = "DEFAULT",
    scale: int = 1,
    seed: int = 59,
    include_legacy_noise: bool = True,
    as_of: datetime = BASE_TIME,
) -> list[CacheEntry]:
    """The sample rows, in load order. Same arguments, same list; only ``environment`` differs
    between environments, plus (DEFAULT with ``include_legacy_noise``) two rows whose environment
    ('dev', 'staging') the migration must report as exceptions. Every row stamp is ``as_of``
    minus a fixed offset (the newest is ``as_of``); the values do not depend on it."""
    _check_arguments(environment, scale, seed)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise UserFacingError(f"The sample's as_of must be timezone-aware, not {as_of!r}.")
    shift = as_of - BASE_TIME
    with _gc_paused():
        drafts = all_drafts(scale, seed)
        if include_legacy_noise and environment == "DEFAULT":
            drafts += noise_drafts(seed)
        entries = []
        for i, (kind, name, key, value, description, row_stamps, env) in enumerate(drafts):
            created, updated = row_stamps or stamps(i)
            entries.append(
                CacheEntry(
                    kind,
                    name,
                    key,
                    value,
                    env or environment,
                    description,
                    created + shift,
                    None if updated is None else updated + shift,
                )
            )
        return entries


def noise_entries(scale: int = 1, seed: int = 59) -> list[CacheEntry]:
    """The legacy noise rows ('dev', 'staging') a DEFAULT load inserts beside the sample."""
    return [
        e
        for e in generate_entries("DEFAULT", scale, seed, include_legacy_noise=True)
        if e.environment not in VALID_ENVIRONMENTS
    ]


# --- COPY -----------------------------------------------------------------------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _copy_text(text: str) -> str:
    """A value as a COPY text-format field (backslash, tab, newline and CR escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _timestamp(moment: datetime | None) -> str:
    if moment is None:
        return "\\N"
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"cache entry timestamps must be timezone-aware, got {moment!r}")
    return moment.isoformat()


def iter_copy_chunks(
    entries: Iterable[CacheEntry], environment: str | None = None, rows_per_chunk: int = 10_000
) -> Iterator[bytes]:
    """COPY text-format input (columns COPY_COLUMNS), in chunks of rows_per_chunk rows.

    ``environment``, when given, replaces every entry's environment."""
    text = _copy_text
    lines: list[str] = []
    for e in entries:
        env = text(e.environment if environment is None else environment)
        description = "\\N" if e.description is None else text(e.description)
        # JSON text holds no raw control characters: only its backslashes need escaping
        value = _json(e.value).replace("\\", "\\\\")
        lines.append(
            f"{text(e.type)}\t{text(e.name)}\t{text(e.key)}\t{value}\t{env}\t{description}\t"
            f"{_timestamp(e.created_at)}\t{_timestamp(e.updated_at)}\n"
        )
        if len(lines) >= rows_per_chunk:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def copy_rows(entries: Iterable[CacheEntry], environment: str | None = None) -> bytes:
    """The whole COPY text-format input for entries (see iter_copy_chunks)."""
    return b"".join(iter_copy_chunks(entries, environment))


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, TABLE_NAME)


def _check_schema(schema: str) -> None:
    if not isinstance(schema, str) or not schema.strip() or len(schema.encode()) > 63:
        raise UserFacingError(f"Invalid schema name {schema!r}: use 1 to 63 bytes.")


def ensure_table(conn: psycopg.Connection[Any], schema: str = "public") -> None:
    """Create the schema and the legacy cache_entries table in it when absent."""
    _check_schema(schema)
    with conn.transaction():
        conn.execute(CREATE_SCHEMA_SQL.format(schema=sql.Identifier(schema)))
        conn.execute(CREATE_TABLE_SQL.format(table=_table(schema)))


def write_entries(
    conn: psycopg.Connection[Any],
    entries: Iterable[CacheEntry],
    *,
    schema: str = "public",
    environment: str | None = None,
) -> int:
    """COPY entries into schema.cache_entries (which must exist); returns the row count.

    Runs in the caller's transaction (or autocommits, on an autocommit connection)."""
    _check_schema(schema)
    statement = COPY_SQL.format(
        table=_table(schema), columns=sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for chunk in iter_copy_chunks(entries, environment):
                copy.write(chunk)
        return cursor.rowcount


def existing_rows(
    conn: psycopg.Connection[Any],
    schema: str,
    environments: Sequence[str],
    noise: Sequence[CacheEntry] = (),
) -> dict[str, int]:
    """Rows a load of ``environments`` would collide with, per environment (0 when the table
    does not exist): that environment's rows, and rows with the key of a noise row."""
    _check_schema(schema)
    table = _table(schema)
    found = conn.execute("select to_regclass(%s)", (table.as_string(conn),)).fetchone()
    counts = dict.fromkeys(environments, 0)
    if found is None or found[0] is None:
        return counts
    for environment, count in conn.execute(
        sql.SQL(
            "select environment, count(*) from {} where environment = any(%s) group by 1"
        ).format(table),
        (list(environments),),
    ).fetchall():
        counts[environment] = int(count)
    for e in noise:
        row = conn.execute(
            sql.SQL(
                "select count(*) from {} where type = %s and name = %s and key = %s"
                " and environment = %s"
            ).format(table),
            (e.type, e.name, e.key, e.environment),
        ).fetchone()
        if row and row[0]:
            counts[e.environment] = counts.get(e.environment, 0) + int(row[0])
    return counts


def _describe_rows(counts: Mapping[str, int]) -> str:
    shown = [f"{count:,} {environment!r}" for environment, count in counts.items() if count]
    return ", ".join(shown) + " rows"


def load_sample(
    conn: psycopg.Connection[Any],
    *,
    schema: str = "public",
    environments: Sequence[str] = ("DEFAULT",),
    scale: int = 1,
    seed: int = 59,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    as_of: datetime | None = None,
) -> LoadSummary:
    """Load the sample into schema.cache_entries for the given environments, in one transaction.

    A cache_entries table may hold somebody's real data, so by default the load refuses (and
    changes nothing) when the table already holds rows of those environments, or rows equal to
    the legacy noise it would insert ('dev' / 'staging', DEFAULT only); the error names the
    counts.  Only with ``replace`` does it first delete exactly those rows, nothing else.  The
    row stamps end at ``as_of``, by default now (whole seconds): a fresh load is fresh to
    ``dbt source freshness``.  Loading twice with ``replace`` and the same ``as_of`` gives the
    same content; by default only the stamps move with the clock.  On an idle connection the
    transaction is committed; inside a transaction the caller's commit decides."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    _check_schema(schema)
    if isinstance(environments, str):
        environments = (environments,)
    targets = tuple(dict.fromkeys(environments))
    if not targets:
        raise UserFacingError("No environment to load the sample into; name at least one.")
    for environment in targets:
        _check_arguments(environment, scale, seed)

    say(
        f"generating {len(ETFS) * scale:,} ETFs, {len(THEMES) * scale:,} themes and "
        f"{UNIVERSE_SIZE * scale:,} stocks (scale {scale}, seed {seed})..."
    )
    if as_of is None:
        as_of = datetime.now(UTC).replace(microsecond=0)
    everything = generate_entries("DEFAULT", scale, seed, include_legacy_noise=True, as_of=as_of)
    noise = [e for e in everything if e.environment not in VALID_ENVIRONMENTS]
    rows = [e for e in everything if e.environment in VALID_ENVIRONMENTS]
    generated = time.perf_counter()

    table = _table(schema)
    deleted = 0
    rows_by_type: Counter[str] = Counter()
    rows_by_environment: dict[str, int] = {}
    try:
        with conn.transaction():
            conn.execute(
                "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"validation.sample:{schema}",),
            )
            ensure_table(conn, schema)
            own_noise = noise if "DEFAULT" in targets else []
            present = existing_rows(conn, schema, targets, own_noise)
            if any(present.values()) and not replace:
                raise UserFacingError(
                    f"{schema}.{TABLE_NAME} already holds {_describe_rows(present)}; nothing was "
                    "loaded or changed. Load the sample into a database of its own, or replace "
                    "those rows explicitly with 'load-sample --replace --yes'."
                )
            if replace and any(present.values()):
                say(f"deleting {_describe_rows(present)} from {schema}.{TABLE_NAME}...")
                deleted += conn.execute(
                    sql.SQL("delete from {} where environment = any(%s)").format(table),
                    (list(targets),),
                ).rowcount
                for e in own_noise:
                    deleted += conn.execute(
                        sql.SQL(
                            "delete from {} where type = %s and name = %s and key = %s "
                            "and environment = %s"
                        ).format(table),
                        (e.type, e.name, e.key, e.environment),
                    ).rowcount
            for environment in targets:
                say(f"copying {len(rows):,} rows for {environment}...")
                write_entries(conn, rows, schema=schema, environment=environment)
                rows_by_environment[environment] = len(rows)
                rows_by_type.update(e.type for e in rows)
                if environment == "DEFAULT" and own_noise:
                    say(f"copying {len(own_noise)} legacy rows with invalid environments...")
                    write_entries(conn, own_noise, schema=schema)
                    rows_by_environment.update(Counter(e.environment for e in own_noise))
                    rows_by_type.update(e.type for e in own_noise)
            say(f"analyzing {schema}.{TABLE_NAME}...")
            conn.execute(sql.SQL("analyze {}").format(table))
    except psycopg.errors.UniqueViolation as exc:
        raise UserFacingError(
            f"{schema}.{TABLE_NAME} already holds a row with the key of a sample row "
            f"({exc.diag.message_detail or exc.diag.message_primary}); nothing was loaded. Load "
            "the sample into a database of its own."
        ) from exc
    finished = time.perf_counter()
    summary = LoadSummary(
        schema=schema,
        environments=targets,
        scale=scale,
        seed=seed,
        rows_by_type=dict(sorted(rows_by_type.items())),
        rows_by_environment=rows_by_environment,
        deleted_rows=deleted,
        generate_seconds=generated - started,
        copy_seconds=finished - generated,
        elapsed_seconds=finished - started,
    )
    return summary


@dataclass(frozen=True)
class Rebalance:
    """What ``rebalance_etf`` changed in one etf_holdings entry, and when (UTC, no zone, as
    the history models keep time)."""

    etf: str
    removed: tuple[str, ...]
    added: tuple[str, ...]
    before: datetime


REBALANCE_CANDIDATES_SQL = """
select held.symbol #>> '{{}}'
from {table} as entry,
    lateral jsonb_path_query(entry.value, 'lax $.holdings[*] ? (@.type() == "string")')
        as held (symbol)
where entry.type = 'etf_holdings' and entry.environment = %(env)s and entry.key <> %(etf)s
group by held.symbol
having not held.symbol <@ %(holdings)s::jsonb
order by count(*) desc, held.symbol #>> '{{}}'
limit %(count)s
"""


def rebalance_etf(
    conn: psycopg.Connection[Any],
    etf: str,
    *,
    schema: str = "public",
    environment: str = "DEFAULT",
    count: int = 3,
) -> Rebalance:
    """A rebalance of the sample's ``etf`` (the demo's scripted change): its last ``count``
    holdings leave, and the ``count`` symbols most held by the environment's other ETFs (and not
    by this one) join at the end. The entry's ``updated_at`` moves to now, as the legacy
    application writes it. One transaction; the entry must hold a plain ``holdings`` list of
    symbols, the sample's shape for every etf_holdings entry."""
    _check_schema(schema)
    table = _table(schema)
    with conn.transaction():
        row = conn.execute(
            sql.SQL(
                "select value -> 'holdings', date_trunc('second', now() at time zone 'utc') from {}"
                " where type = 'etf_holdings' and key = %s and environment = %s for update"
            ).format(table),
            (etf, environment),
        ).fetchone()
        if row is None:
            raise UserFacingError(
                f"{schema}.{TABLE_NAME} has no etf_holdings entry {etf!r} in {environment}; load "
                f"the sample first ({harness_command()} load-sample)."
            )
        holdings, before = row
        if not isinstance(holdings, list) or len(holdings) <= count:
            raise UserFacingError(
                f"etf_holdings {etf!r} in {environment} does not hold a list of more than "
                f"{count} symbols under 'holdings'; the rebalance changes only the sample's shape."
            )
        added = [
            symbol
            for (symbol,) in conn.execute(
                sql.SQL(REBALANCE_CANDIDATES_SQL).format(table=table),
                {"env": environment, "etf": etf, "holdings": json.dumps(holdings), "count": count},
            ).fetchall()
        ]
        kept, removed = holdings[:-count], holdings[-count:]
        conn.execute(
            sql.SQL(
                "update {} set value = jsonb_set(value, '{{holdings}}', %s::jsonb),"
                " updated_at = now() where type = 'etf_holdings' and key = %s"
                " and environment = %s"
            ).format(table),
            (json.dumps(kept + added), etf, environment),
        )
    return Rebalance(etf, tuple(map(str, removed)), tuple(added), before)
