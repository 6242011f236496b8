"""``python -m validation query … --as-of / changes``: the analysts' questions about the past,
answered from the history models (models/marts/history/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import sql

from validation.command import harness_command
from validation.connection import connect
from validation.errors import UserFacingError
from validation.query import Answer, close_names, environments_in, other_targets_hint

# When a group name is shared by several types, the one a person most likely meant.
TYPE_PREFERENCE = ("ETF", "THEME", "SECTOR", "SEGMENT", "CUSTOM")
QUESTION_TYPES = {"etf": "ETF", "theme": "THEME", "sector": "SECTOR"}


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """A date (``2026-06-01``: its start, or with ``end_of_day`` the start of the next day) or
    an ISO date-time, in UTC (the history's timestamps are UTC without a time zone)."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime.combine(day, time())
            if not end_of_day:
                return moment
            # the end of 9999-12-31 (a common "no end") is the last moment datetime holds
            return moment + timedelta(days=1) if day < date.max else datetime.max
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UserFacingError(
            f"{text!r} is not a date: write 2026-06-01 or 2026-06-01T14:30:00 (UTC)."
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _history_start(conn: psycopg.Connection, schema: str, environment: str) -> datetime:
    row = conn.execute(
        sql.SQL("select min(valid_from) from {} where environment = %s").format(
            sql.Identifier(schema, "definition_group_history")
        ),
        (environment,),
    ).fetchone()
    if not row or row[0] is None:
        history = sql.Identifier(schema, "definition_group_history")
        raise UserFacingError(
            f"There is no history of {environment} yet"
            f"{other_targets_hint(environments_in(conn, history))}; build it with "
            f"'{harness_command()} build --target {environment.lower()}' (history starts "
            "at the first build that includes the history models)."
        )
    return row[0]


def _since_when(start: datetime, environment: str) -> str:
    return (
        f"The history of {environment} starts at {_shown(start)} UTC (the first build with the "
        "history models)"
    )


def _shown(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def _require_known(start: datetime, moment: datetime, environment: str, option: str) -> None:
    if moment < start:
        raise UserFacingError(
            f"{_since_when(start, environment)}; nothing is known before it: give {option} "
            f"{start.date().isoformat()} or later."
        )


def _changes_range(
    since: str, until: str | None, start: datetime, now: datetime, environment: str
) -> tuple[datetime, datetime, list[str]]:
    """The (begin, end) that ``changes --since/--until`` covers, and notes on how it was read:
    a reversed range or a --since after now is refused; a --since before the history began
    starts at its beginning, and an --until after now ends now, each with a note."""
    begin = parse_moment(since, end_of_day=False)
    end = parse_moment(until, end_of_day=True) if until else now
    if until and end <= begin:
        raise UserFacingError(
            f"--until {until} is not after --since {since}: the range is reversed; give the "
            "earlier moment to --since and the later one to --until."
        )
    _require_known(start, end, environment, "--until")
    if begin > now:
        raise UserFacingError(
            f"--since {since} is in the future (it is {_shown(now)} UTC now): nothing has "
            "changed after now; give an earlier --since."
        )
    notes = []
    if begin < start:
        notes.append(f"{_since_when(start, environment)}: the changes are shown from then.")
        begin = start
    if end > now:
        if end > _end_of_day(now):
            notes.append(f"--until {until} is in the future: the changes are shown up to now.")
        end = now
    return begin, end, notes


def _end_of_day(moment: datetime) -> datetime:
    return datetime.combine(moment.date() + timedelta(days=1), time())


def _resolve_group(
    conn: psycopg.Connection, schema: str, environment: str, name: str, kind: str | None
) -> tuple[str, str]:
    """(type, name) of the group a person named, over every name it ever had."""
    candidates = [name, name.upper()] if kind in (None, "ETF") else [name]
    rows = conn.execute(
        sql.SQL(
            "select distinct group_type, group_name from {} where environment = %s"
            " and group_name = any(%s) and (%s::text is null or group_type = %s)"
        ).format(sql.Identifier(schema, "definition_group_history")),
        (environment, candidates, kind, kind),
    ).fetchall()
    if rows:
        rows.sort(key=lambda r: TYPE_PREFERENCE.index(r[0]) if r[0] in TYPE_PREFERENCE else 99)
        return rows[0][0], rows[0][1]
    names = [
        r[0]
        for r in conn.execute(
            sql.SQL(
                "select distinct group_name from {} where environment = %s"
                " and (%s::text is null or group_type = %s)"
            ).format(sql.Identifier(schema, "definition_group_history")),
            (environment, kind, kind),
        ).fetchall()
    ]
    close = close_names(name, names)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    raise UserFacingError(f"No {kind or 'group'} named {name!r} in {environment}'s history{hint}")


def _fetch(conn: psycopg.Connection, query: sql.Composable, params: Mapping[str, Any]) -> Any:
    cur = conn.execute(query, params)
    return [c.name for c in cur.description or []], cur.fetchall()


def _in_period(moment: str) -> sql.Composable:
    """The history rows valid at the query parameter named ``moment``."""
    return sql.SQL("valid_from <= {at} and (valid_to is null or valid_to > {at})").format(
        at=sql.Placeholder(moment)
    )


def members_as_of_query(schema: str) -> sql.Composed:
    """A group's members at a moment (parameters env, type, name, at); `make bench` times it."""
    return sql.SQL(
        "select symbol, weight, position, valid_from as member_since from {}"
        " where environment = %(env)s and group_type = %(type)s and group_name = %(name)s"
        " and {period} order by position nulls last, symbol"
    ).format(sql.Identifier(schema, "group_membership_history"), period=_in_period("at"))


def groups_as_of_query(schema: str) -> sql.Composed:
    """A symbol's groups at a moment (parameters env, symbol, at); `make bench` times it."""
    return sql.SQL(
        "select group_type, group_name, weight, position, valid_from as member_since"
        " from {} where environment = %(env)s and symbol = %(symbol)s"
        " and {period} order by group_type, group_name"
    ).format(sql.Identifier(schema, "group_membership_history"), period=_in_period("at"))


def _members_as_of(
    conn: psycopg.Connection, schema: str, environment: str, group: tuple[str, str], at: datetime
) -> Answer:
    columns, rows = _fetch(
        conn,
        members_as_of_query(schema),
        {"env": environment, "type": group[0], "name": group[1], "at": at},
    )
    keep = [i for i, c in enumerate(columns) if any(r[i] is not None for r in rows)] or [0]
    return Answer(
        f"{group[0]} {group[1]} in {environment} as of {at.isoformat(sep=' ')} UTC: "
        f"{len(rows)} members",
        [columns[i] for i in keep],
        [[r[i] for i in keep] for r in rows],
    )


def _groups_as_of(
    conn: psycopg.Connection, schema: str, environment: str, symbol: str, at: datetime
) -> Answer:
    columns, rows = _fetch(
        conn, groups_as_of_query(schema), {"env": environment, "symbol": symbol, "at": at}
    )
    return Answer(
        f"{symbol} in {environment} as of {at.isoformat(sep=' ')} UTC: {len(rows)} groups",
        columns,
        rows,
    )


CHANGES_SQL = """
with
group_history as (
    select * from {history}
    where environment = %(env)s and group_type = %(type)s and group_name = %(name)s
),
before as (select * from group_history where {at_since}),
after as (select * from group_history where {at_until})
select
    case
        when before.symbol is null then 'added'
        when after.symbol is null then 'removed'
        else 'reweighted'
    end as change,
    coalesce(after.symbol, before.symbol) as symbol,
    before.weight as weight_before,
    after.weight as weight_after,
    case when before.symbol is null then after.valid_from else before.valid_to end as changed_at
from before
full join after on before.symbol = after.symbol
where
    before.symbol is null
    or after.symbol is null
    or before.weight is distinct from after.weight
order by change, symbol
"""


def _changes(
    conn: psycopg.Connection,
    schema: str,
    environment: str,
    group: tuple[str, str],
    since: datetime,
    until: datetime,
) -> Answer:
    query = sql.SQL(CHANGES_SQL).format(
        history=sql.Identifier(schema, "group_membership_history"),
        at_since=_in_period("since"),
        at_until=_in_period("until"),
    )
    columns, rows = _fetch(
        conn,
        query,
        {"env": environment, "type": group[0], "name": group[1], "since": since, "until": until},
    )
    return Answer(
        f"{group[0]} {group[1]} in {environment}: changes from {since.isoformat(sep=' ')} "
        f"to {until.isoformat(sep=' ')} UTC",
        columns,
        rows,
    )


def ask_history(
    settings: Mapping[str, str],
    question: str,
    arguments: Sequence[str],
    *,
    environment: str,
    schema: str,
    as_of: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Answer:
    """``etf|theme|sector NAME --as-of D``, ``symbol SYMBOL --as-of D``,
    ``changes NAME --since D [--until D]``."""
    try:
        with connect(settings) as conn:
            start = _history_start(conn, schema, environment)
            now = datetime.now(UTC).replace(tzinfo=None)
            if question == "changes":
                if since is None:
                    raise UserFacingError(
                        "'query changes' needs --since (e.g. --since 2026-03-01)."
                    )
                begin, end, notes = _changes_range(since, until, start, now, environment)
                group = _resolve_group(conn, schema, environment, arguments[0], None)
                answer = _changes(conn, schema, environment, group, begin, end)
                return replace(answer, notes=notes)
            assert as_of is not None
            at = parse_moment(as_of, end_of_day=True)
            _require_known(start, at, environment, "--as-of")
            notes = []
            if at > now:
                if at > _end_of_day(now):
                    notes.append(f"--as-of {as_of} is in the future: answered as of now.")
                at = now
            if question == "symbol":
                answer = _groups_as_of(conn, schema, environment, arguments[0].strip().upper(), at)
                return replace(answer, notes=notes)
            kind = QUESTION_TYPES.get(question)
            if kind is None:
                raise UserFacingError(
                    f"'query {question}' has no --as-of form; use it with etf, theme, sector "
                    "or symbol."
                )
            group = _resolve_group(conn, schema, environment, arguments[0], kind)
            return replace(_members_as_of(conn, schema, environment, group, at), notes=notes)
    except psycopg.errors.UndefinedTable as exc:
        raise UserFacingError(
            f"The history tables are missing ({exc.diag.message_primary}); build the models "
            f"with '{harness_command()} build --target {environment.lower()}' (history "
            "starts at that build)."
        ) from exc
