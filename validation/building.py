"""One harness build of one environment, as ``sprint59 build`` and ``sprint59 sync`` both run
it: the dbt command, the fingerprint taken before dbt starts, the decision to skip it when
nothing changed since the last build that left nothing to do, and the recording after it
(validation/fingerprint.py, docs/design.md §12).  The run lock around it is
validation/dbt.py's ``environment_run_lock``; the run claim is dbt's own first hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from validation import fingerprint, targets
from validation.connection import connect
from validation.errors import UserFacingError


class BuildPlan(NamedTuple):
    """A target's build: its inputs and the fingerprint taken before dbt (None: not known,
    nothing is recorded after it)."""

    inputs: fingerprint.BuildInputs | None
    before: fingerprint.Fingerprint | None


UNKNOWN = BuildPlan(None, None)


def dbt_build_command(target: str, dbt_args: Sequence[str]) -> list[str]:
    """The dbt command of a harness build of ``target``: its artifacts under
    <target dir>/<target>/ (targets.harness_target_path), then the caller's dbt options."""
    return [
        "build", "--target", target,
        "--target-path", str(targets.harness_target_path(target)),
        *dbt_args,
    ]  # fmt: skip


def decide(
    conn: psycopg.Connection[Any], inputs: fingerprint.BuildInputs, *, force: bool
) -> BuildPlan | fingerprint.Recorded:
    """The fingerprint now, and either the plan of a build or, when it equals the one
    recorded by the environment's last build that left nothing to change, that record (then
    nothing is run).  --force and --full-refresh always build.  Database errors are the
    caller's: ``build`` builds anyway, ``sync`` tells a lost connection from the rest."""
    before = fingerprint.compute(conn, inputs)
    if force or fingerprint.always_builds(inputs.dbt_args):
        return BuildPlan(inputs, before)
    last = fingerprint.recorded(conn, inputs)
    if last is not None and last.fingerprint == before.digest:
        return last
    return BuildPlan(inputs, before)


def plan_build(
    settings: Mapping[str, str], target: str, dbt_args: Sequence[str], *, force: bool
) -> BuildPlan | fingerprint.Recorded:
    """``decide`` on a connection of its own; any doubt (no record, a table missing, options
    the harness cannot read, a database error) builds, and dbt then reports the problem."""
    targets.environment_for(target)
    inputs = fingerprint.inputs_for(target, dbt_args)
    if inputs is None:
        return UNKNOWN
    try:
        with connect(settings, autocommit=True) as conn:
            return decide(conn, inputs, force=force)
    except (psycopg.Error, UserFacingError):
        # no fingerprint, no skip: dbt itself then says what is wrong (a missing table, a
        # privilege, the connection), as it did before there were fingerprints
        return UNKNOWN


def record(settings: Mapping[str, str], plan: BuildPlan | None, started: datetime) -> str | None:
    """After dbt exited 0: record the fingerprint taken before it when the build left nothing
    to change (fingerprint.record_if_settled).  The line saying which, or None when there was
    no fingerprint to record."""
    if plan is None or plan.inputs is None or plan.before is None:
        return None
    try:
        with connect(settings, autocommit=True) as conn:
            return fingerprint.record_if_settled(conn, plan.inputs, plan.before, started)
    except (psycopg.Error, UserFacingError) as exc:
        return f"fingerprint not recorded ({first_line(exc)}); the next build runs"


def runs_logged(conn: psycopg.Connection[Any], inputs: fingerprint.BuildInputs) -> int | None:
    """How many runs of the environment its run log holds (the N of "run N"), or None when
    there is no run log in the schema."""
    found = conn.execute(
        "select to_regclass(format('%%I.%%I', %s::text, %s::text)) is not null",
        (inputs.schema, targets.RUN_LOG),
    ).fetchone()
    if not (found and found[0]):
        return None
    row = conn.execute(
        sql.SQL("select count(*) from {} where environment = %s").format(
            sql.Identifier(inputs.schema, targets.RUN_LOG)
        ),
        (inputs.environment,),
    ).fetchone()
    return int(row[0]) if row else None


def first_line(exc: BaseException) -> str:
    """An error's first line (psycopg's carry the server's detail on the next ones)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
