"""``python -m validation query``: the analysts' questions, answered from the migrated tables."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from validation.command import harness_command
from validation.connection import connect
from validation.errors import UserFacingError

FORMATS = ("table", "csv", "json")

# Characters a terminal acts on instead of showing: C0 controls (ESC starts the sequences that
# clear the screen or rewrite the title), DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what is shown.  Table output shows each as an escape (\x1b, \u202e).
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# OWASP, "CSV Injection": a spreadsheet reads a cell starting with one of these as a formula
# (=HYPERLINK(...), +cmd, -2+3, @SUM, or after a tab or carriage return); a leading single
# quote makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str) -> str:
    """``text`` with every control character shown as an escape (ESC as \\x1b), so printing
    it can neither move the cursor, clear the screen nor reorder the line."""
    return _INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def csv_safe(cell: str) -> str:
    """A CSV cell no spreadsheet runs as a formula: one that starts with = + - @, a tab or a
    carriage return gets a leading single quote (OWASP's CSV-injection guidance)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


@dataclass(frozen=True)
class Answer:
    """A titled result set."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    notes: Sequence[str] = ()  # what the operator should know about the answer (on stderr)


def _relation(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def _fetch(
    conn: psycopg.Connection, query: sql.Composable, params: Sequence[Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.execute(query, params)
    columns = [c.name for c in cur.description or []]
    return columns, cur.fetchall()


def _require_environment(
    conn: psycopg.Connection, schema: str, environment: str, looked_in: str
) -> None:
    try:
        row = conn.execute(
            sql.SQL("select count(*) from {} where environment = %s").format(
                _relation(schema, "definition_groups")
            ),
            (environment,),
        ).fetchone()
    except psycopg.errors.UndefinedTable as exc:
        raise UserFacingError(
            f"There is no {schema}.definition_groups table{looked_in}; build it first with "
            f"'{harness_command()} build --target {environment.lower()}', or name the schema "
            "it was built in with --schema (or DBT_SCHEMA)."
        ) from exc
    if not row or row[0] == 0:
        others = environments_in(conn, _relation(schema, "definition_groups"))
        raise UserFacingError(
            f"Environment {environment} has no migrated groups in {schema}"
            f"{other_targets_hint(others)}; build it with "
            f"'{harness_command()} build --target {environment.lower()}'."
        )


def environments_in(conn: psycopg.Connection, table: sql.Identifier) -> list[str]:
    """The environments that have rows in ``table`` (a table with an environment column)."""
    return [
        str(r[0])
        for r in conn.execute(
            sql.SQL("select distinct environment from {} order by 1").format(table)
        ).fetchall()
    ]


def other_targets_hint(environments: Sequence[str]) -> str:
    """' (it holds PROD: add --target prod)' for an environment asked of a database that holds
    others (the targets are the environments in lower case), else ''."""
    if not environments:
        return ""
    options = " or ".join(f"--target {e.lower()}" for e in environments)
    return f" (it holds {', '.join(environments)}: add {options})"


def _unknown(conn: psycopg.Connection, schema: str, environment: str, kind: str, name: str) -> str:
    names = [
        r[0]
        for r in conn.execute(
            sql.SQL("select name from {} where environment = %s and type = %s").format(
                _relation(schema, "definition_groups")
            ),
            (environment, kind),
        ).fetchall()
    ]
    close = close_names(name, names)
    hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(names)} {kind}s exist)."
    return f"No {kind} named {name!r} in {environment}{hint}"


SIMILAR_ENOUGH = 0.75  # SequenceMatcher ratio for longer names: NOSUCH → SCHG is only 0.6


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def close_names(typed: str, names: Sequence[str], limit: int = 3) -> list[str]:
    """Names a person plausibly meant: a typo away (SPX → SPY: one edit per four characters),
    alike on the whole (longer names), or the start of the name (crypto → crypto_miners);
    compared without regard to case.  Nothing rather than noise."""
    wanted = typed.strip().casefold()
    scored = []
    for name in names:
        candidate = name.casefold()
        ratio = difflib.SequenceMatcher(None, wanted, candidate).ratio()
        typo = _edits(wanted, candidate) <= max(1, len(wanted) // 4)
        prefix = len(wanted) >= 2 and (candidate.startswith(wanted) or wanted.startswith(candidate))
        if typo or ratio >= SIMILAR_ENOUGH or prefix:
            scored.append((-ratio, name))
    return [name for _, name in sorted(scored)[:limit]]


def _group_members(
    conn: psycopg.Connection, schema: str, environment: str, kind: str, name: str
) -> Answer:
    columns, rows = _fetch(
        conn,
        sql.SQL(
            "select m.symbol, m.weight,"
            # a row a legacy script wrote may hold anything there: only a number is a position
            " case when jsonb_typeof(m.metadata -> 'position') = 'number'"
            " then (m.metadata ->> 'position')::numeric end as position,"
            " m.metadata ->> 'industry' as industry"
            " from {memberships} m join {groups} g on g.id = m.group_id"
            " where g.environment = %s and g.type = %s and g.name = %s"
            " order by position nulls last, m.symbol"
        ).format(
            memberships=_relation(schema, "group_memberships"),
            groups=_relation(schema, "definition_groups"),
        ),
        (environment, kind, name),
    )
    if not rows:
        exists = conn.execute(
            sql.SQL("select 1 from {} where environment = %s and type = %s and name = %s").format(
                _relation(schema, "definition_groups")
            ),
            (environment, kind, name),
        ).fetchone()
        if not exists:
            raise UserFacingError(_unknown(conn, schema, environment, kind, name))
    keep = [i for i, c in enumerate(columns) if any(r[i] is not None for r in rows)] or [0]
    return Answer(
        f"{kind} {name} in {environment}: {len(rows)} members",
        [columns[i] for i in keep],
        [[r[i] for i in keep] for r in rows],
    )


def _packed_members(
    conn: psycopg.Connection, schema: str, environment: str, kind: str, name: str
) -> Answer:
    """A group's members in source order from its one packed row in group_holdings (the
    migration's memberships, its ledger); a group it does not hold (another writer's) is
    answered from the two tables."""
    row = conn.execute(
        sql.SQL(
            "select symbols, weights, positions from {}"
            " where environment = %s and type = %s and name = %s"
        ).format(_relation(schema, "group_holdings")),
        (environment, kind, name),
    ).fetchone()
    if row is None:
        return _group_members(conn, schema, environment, kind, name)
    symbols, weights, positions = row
    columns = ["symbol", "weight", "position"]
    rows = list(zip(symbols, weights or [None] * len(symbols), positions, strict=True))
    keep = [i for i, _ in enumerate(columns) if any(r[i] is not None for r in rows)] or [0]
    return Answer(
        f"{kind} {name} in {environment}: {len(rows)} members",
        [columns[i] for i in keep],
        [[r[i] for i in keep] for r in rows],
    )


def ask(
    settings: Mapping[str, str],
    question: str,
    arguments: Sequence[str],
    *,
    environment: str,
    schema: str = "public",
    looked_in: str = "",
    history: Mapping[str, str | None] | None = None,
) -> Answer:
    """Answer one of: etf NAME, theme KEY, sector [KEY], symbol SYMBOL, overlap ETF OTHER;
    with ``history`` (as_of, since, until) set, or for ``changes NAME``, from the history
    models (validation/history_query.py).

    ``looked_in`` says where the tables were looked for, and why there, in error messages."""
    history = history or {}
    if question == "changes" or history.get("as_of"):
        from validation.history_query import ask_history

        return ask_history(
            settings, question, arguments, environment=environment, schema=schema,
            as_of=history.get("as_of"), since=history.get("since"), until=history.get("until"),
        )  # fmt: skip
    try:
        return _ask(
            settings, question, arguments, environment=environment, schema=schema,
            looked_in=looked_in,
        )  # fmt: skip
    except psycopg.errors.UndefinedTable as exc:
        raise UserFacingError(
            f"A table this question needs is missing ({exc.diag.message_primary}){looked_in}; "
            f"build the models with '{harness_command()} build --target {environment.lower()}'."
        ) from exc


def _ask(
    settings: Mapping[str, str],
    question: str,
    arguments: Sequence[str],
    *,
    environment: str,
    schema: str,
    looked_in: str,
) -> Answer:
    with connect(settings) as conn:
        _require_environment(conn, schema, environment, looked_in)
        if question == "etf":
            return _packed_members(conn, schema, environment, "ETF", arguments[0].upper())
        if question == "theme":
            return _packed_members(conn, schema, environment, "THEME", arguments[0])
        if question == "sector" and arguments:
            return _group_members(conn, schema, environment, "SECTOR", arguments[0])
        if question == "sector":
            columns, rows = _fetch(
                conn,
                sql.SQL(
                    "select name as sector, member_count as symbols, description"
                    " from {} where environment = %s and type = 'SECTOR'"
                    " order by member_count desc, name"
                ).format(_relation(schema, "group_summary")),
                (environment,),
            )
            return Answer(f"sectors in {environment}", columns, rows)
        if question == "symbol":
            symbol = arguments[0].strip().upper()
            columns, rows = _fetch(
                conn,
                sql.SQL(
                    "select symbol, sector, industry, etf_count, etfs, theme_count, themes,"
                    " custom_groups from {} where environment = %s and symbol = %s"
                ).format(_relation(schema, "symbol_memberships")),
                (environment, symbol),
            )
            if not rows:
                raise UserFacingError(
                    f"Symbol {symbol!r} is in no group of {environment}; check the ticker "
                    "(e.g. BRK.B, not BRK/B)."
                )
            return Answer(f"{symbol} in {environment}", columns, rows)
        if question == "overlap":
            first, second = (a.upper() for a in arguments[:2])
            for name in (first, second):
                found = conn.execute(
                    sql.SQL(
                        "select 1 from {} where environment = %s and type = 'ETF' and name = %s"
                    ).format(_relation(schema, "definition_groups")),
                    (environment, name),
                ).fetchone()
                if not found:
                    raise UserFacingError(_unknown(conn, schema, environment, "ETF", name))
            columns, rows = _fetch(
                conn,
                sql.SQL(
                    "select etf, other_etf, shared_symbols, etf_holdings, other_etf_holdings,"
                    " share_of_etf, share_of_other_etf, weighted_overlap"
                    " from {} where environment = %s and etf = %s and other_etf = %s"
                ).format(_relation(schema, "etf_overlap")),
                (environment, first, second),
            )
            return Answer(f"overlap of {first} and {second} in {environment}", columns, rows)
    raise UserFacingError(f"Unknown question {question!r}; see '{harness_command()} query -h'.")


def tables_read(question: str, names: Sequence[str], *, history: bool) -> tuple[str, ...]:
    """The tables (beside the two tables, in their schema) that a question reads."""
    if question == "changes" or history:
        return ("definition_group_history", "group_membership_history")
    by_question = {
        "etf": ("group_holdings", "group_memberships"),
        "theme": ("group_holdings", "group_memberships"),
        "sector": ("group_memberships",) if names else ("group_summary",),
        "symbol": ("symbol_memberships",),
        "overlap": ("etf_overlap",),
    }
    return ("definition_groups", *by_question.get(question, ()))


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(_cell(value))


def _csv_text(value: Any, *, raw: bool) -> str:
    text = _text(value)
    # numbers are numbers (a weight of -0.5 is no formula); text from the tables is guarded
    return text if raw or not isinstance(value, str | list) else csv_safe(text)


def render(answer: Answer, output_format: str, *, raw: bool = False) -> str:
    """The answer as an aligned table, CSV or JSON (a list of objects).

    The table is for reading on a terminal: control characters show as escapes (visible).  A
    CSV cell of text that a spreadsheet would run as a formula starts with a single quote
    (csv_safe) unless ``raw``; JSON escapes control characters itself."""
    if output_format == "json":
        records = [
            {c: _cell(v) for c, v in zip(answer.columns, row, strict=True)} for row in answer.rows
        ]
        return json.dumps(records, indent=2, default=str)
    if output_format == "csv":
        buffer = io.StringIO()
        # RFC 4180's CRLF line ends: the writer quotes a cell holding any character of the line
        # terminator, so a carriage return inside a cell can no more start a row of its own
        # (with "\n" alone, "x\r=cmd" went out unquoted)
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(answer.columns)
        writer.writerows([[_csv_text(v, raw=raw) for v in row] for row in answer.rows])
        return buffer.getvalue().removesuffix("\r\n")
    cells = [[visible(_text(v)) for v in row] for row in answer.rows]
    widths = [
        max([len(c)] + [min(len(r[i]), 60) for r in cells]) for i, c in enumerate(answer.columns)
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            (v if len(v) <= 60 else v[:57] + "...").ljust(w)
            for v, w in zip(values, widths, strict=True)
        ).rstrip()

    out = [visible(answer.title), line(answer.columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells] or ["(no rows)"]
    return "\n".join(out)
