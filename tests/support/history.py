"""The membership history's oracle: what the two tables held after a run, in the history's
terms, and what the history (and the query command's own as-of SQL) answers for that moment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg

from support.legacy_cache import Published, has_ledger, published
from validation.history_query import groups_as_of_query, members_as_of_query

# A state as the history records it: group identity + symbol -> (name, weight, position),
# and group identity -> name.
MembershipState = dict[tuple[Any, ...], tuple[Any, ...]]
GroupState = dict[tuple[Any, ...], str]
HistoryState = tuple[GroupState, MembershipState]


def _position(metadata: Any) -> int | None:
    value = metadata.get("position") if isinstance(metadata, dict) else None
    return value if isinstance(value, int) else None


# another writer's memberships inside the migration's groups (not in its ledger)
FOREIGN_MEMBERS_SQL = """
select l.environment, l.group_type, l.source_type, l.source_key, m.symbol
from public.migration_ledger_groups l
join public.group_memberships m on m.group_id = l.group_id
where not exists (
    select from public.migration_ledger_memberships lm where lm.membership_id = m.id
)
"""


def tables_state(conn: psycopg.Connection, state: Published | None = None) -> HistoryState:
    """What the two tables hold (``state``, when the caller has just read them), in the
    history's terms: the groups the migration built and its memberships (the history leaves
    out rows another writer inserted, a member added by hand to a migrated group included)."""
    state = published(conn) if state is None else state
    foreign = set()
    if has_ledger(conn):
        foreign = {tuple(row) for row in conn.execute(FOREIGN_MEMBERS_SQL).fetchall()}
    # a group's content starts with its name (legacy_cache._group_state_sql)
    groups = {key: content[0] for key, content in state.groups.items() if key[2] is not None}
    memberships = {
        key: (groups[key[:4]], weight, _position(metadata))
        for key, (weight, metadata) in state.memberships.items()
        if key[2] is not None and key not in foreign
    }
    return groups, memberships


def history_as_of(conn: psycopg.Connection, at: datetime) -> HistoryState:
    """The two history models' answer at a time, every environment and group at once."""
    in_period = "valid_from <= %(at)s and (valid_to is null or valid_to > %(at)s)"
    groups = {
        (env, gtype, stype, skey): name
        for env, gtype, stype, skey, name in conn.execute(
            "select environment, group_type, source_type, source_key, group_name"
            f" from public.definition_group_history where {in_period}",
            {"at": at},
        ).fetchall()
    }
    memberships = {
        (env, gtype, stype, skey, symbol): (name, weight, position)
        for env, gtype, stype, skey, symbol, name, weight, position in conn.execute(
            "select environment, group_type, source_type, source_key, symbol, group_name,"
            " weight, position from public.group_membership_history"
            f" where {in_period}",
            {"at": at},
        ).fetchall()
    }
    return groups, memberships


def last_run_time(conn: psycopg.Connection, environment: str = "DEFAULT") -> datetime:
    """When the environment's last run started: the moment its publication is dated by."""
    row = conn.execute(
        "select max(run_started_at) from public.migration_run_log where environment = %s",
        (environment,),
    ).fetchone()
    assert row is not None and row[0] is not None
    return row[0]


def query_answers_differ(
    conn: psycopg.Connection, at: datetime, expected: HistoryState, known: HistoryState
) -> list[str]:
    """Where the query command's as-of SQL (validation/history_query.py) disagrees with what
    the tables held at ``at``: every group's members, and every symbol's groups, as of then.
    Groups and symbols the history itself knows at ``at`` are asked too, so that an extra
    one shows (``known``: history_as_of at ``at``)."""
    groups, memberships = expected
    known_groups, known_memberships = known
    expected_members: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
    expected_groups_of: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
    for (env, gtype, _stype, _skey, symbol), (name, weight, position) in memberships.items():
        expected_members.setdefault((env, gtype, name), set()).add((symbol, weight, position))
        expected_groups_of.setdefault((env, symbol), set()).add((gtype, name, weight, position))
    problems = []
    asked_groups: Iterable[tuple[Any, ...]] = {
        (key[0], key[1], name) for key, name in (groups | known_groups).items()
    }
    for env, gtype, name in sorted(asked_groups, key=repr):
        answer = {
            (symbol, weight, position)
            for symbol, weight, position, _since in conn.execute(
                members_as_of_query("public"),
                {"env": env, "type": gtype, "name": name, "at": at},
            ).fetchall()
        }
        if answer != expected_members.get((env, gtype, name), set()):
            problems.append(
                f"query etf/theme/sector {gtype} {name} ({env}) --as-of {at}: {sorted(answer)}, "
                f"the tables held {sorted(expected_members.get((env, gtype, name), set()))}"
            )
    asked_symbols = {(key[0], key[4]) for key in memberships.keys() | known_memberships.keys()}
    for env, symbol in sorted(asked_symbols, key=repr):
        answer = {
            (gtype, name, weight, position)
            for gtype, name, weight, position, _since in conn.execute(
                groups_as_of_query("public"), {"env": env, "symbol": symbol, "at": at}
            ).fetchall()
        }
        if answer != expected_groups_of.get((env, symbol), set()):
            problems.append(
                f"query symbol {symbol} ({env}) --as-of {at}: {sorted(answer, key=repr)}, "
                f"the tables held {sorted(expected_groups_of.get((env, symbol), set()), key=repr)}"
            )
    return problems


class HistoryViolation(AssertionError):
    pass


def check_history(conn: psycopg.Connection, held: list[tuple[datetime, HistoryState]]) -> None:
    """The history, asked as of each moment a run published, answers what the two tables held
    right after that run: all of it at once, for every moment (a later run may only close
    periods at its own moment, never rewrite earlier ones); and, for the newest moment, group
    by group and symbol by symbol through the query command's SQL (called after every step,
    this asks every moment once).  Moments are distinct: a step whose run published nothing
    would make the check ambiguous."""
    moments = [at for at, _ in held]
    if len(set(moments)) != len(moments):
        raise HistoryViolation(f"two runs share a publication time: {moments}")
    problems = []
    for step, (at, expected) in enumerate(held):
        answered = history_as_of(conn, at)  # the newest moment's answer is used below
        for part, mine, theirs in zip(("groups", "memberships"), answered, expected, strict=True):
            if mine != theirs:
                problems.append(
                    f"history as of step {step} ({at}): {part} missing "
                    f"{sorted(theirs.items() - mine.items(), key=repr)}, extra "
                    f"{sorted(mine.items() - theirs.items(), key=repr)}"
                )
    newest, expected = held[-1]
    problems += query_answers_differ(conn, newest, expected, answered)
    if problems:
        raise HistoryViolation("\n".join(problems))
