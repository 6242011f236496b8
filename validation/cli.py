"""Command line: ``sprint59 <command>`` (``python -m validation <command>`` with the venv's
Python).  Errors are one sentence, never a traceback.

What each command does; its options and help texts are in validation/cli_parser.py.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from validation import server, targets
from validation.cli_parser import DEMO_DATABASE, ENVIRONMENTS, build_parser, harness_command
from validation.connection import PROJECT_ROOT, connect, describe, external_server_configured
from validation.errors import PermissionProblem, UserFacingError

REPORTS_DIR = PROJECT_ROOT / "reports"


def _say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def _step(title: str) -> Iterator[None]:
    """Print a step, then how long it took (progress for the long steps)."""
    _say(f"→ {title} …")
    started = time.perf_counter()
    yield
    _say(f"  done in {time.perf_counter() - started:.1f} s")


def resolve_settings(*, start_embedded: bool) -> dict[str, str]:
    """PG* settings: the caller's server when PG* variables are set, else the embedded one."""
    if external_server_configured():
        return {k: v for k, v in os.environ.items() if k.startswith("PG")}
    info = server.status()
    if info is None:
        if not start_embedded:
            raise UserFacingError(
                "No PostgreSQL server is configured: set PGHOST/PGPORT/PGUSER/PGDATABASE, or start "
                f"the embedded one with '{harness_command()} db start'."
            )
        with _step(f"starting the embedded PostgreSQL server in {server.DEFAULT_PGDATA}"):
            info = server.start()
    return info.settings()


# --- db -------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "start":
        info = server.start()
        _say(f"embedded PostgreSQL running (pid {info.pid}), data in {info.pgdata}")
        _say(f"  connect:  psql {shlex.quote(info.url())}")
        _say(f'  use it:   eval "$({harness_command()} db env)"')
        return 0
    if args.action == "stop":
        stopped = server.stop()
        _say("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    info = server.status()
    if args.action == "status":
        if info is None:
            _say(f"embedded PostgreSQL: not running (data directory {server.DEFAULT_PGDATA})")
            return 3
        _say(f"embedded PostgreSQL: running, pid {info.pid}, socket {info.socket_dir}")
        return 0
    if info is None:
        raise UserFacingError(
            "The embedded PostgreSQL server is not running; start it with "
            f"'{harness_command()} db start'."
        )
    if args.action == "url":
        _say(info.url())
    else:  # env
        for name, value in info.settings().items():
            _say(f"export {name}={shlex.quote(value)}")
    return 0


# --- load-sample ----------------------------------------------------------------------------


def cmd_load_sample(args: argparse.Namespace) -> int:
    from validation import sample

    environments = ENVIRONMENTS if args.all_environments else tuple(args.environment or ["DEFAULT"])
    environments = tuple(dict.fromkeys(environments))
    settings = resolve_settings(start_embedded=True)
    if args.yes and not args.replace:
        raise UserFacingError("--yes only confirms --replace; add --replace, or drop --yes.")
    with connect(settings) as conn:
        noise = sample.noise_entries(args.scale, args.seed) if "DEFAULT" in environments else []
        present = sample.existing_rows(conn, args.schema, environments, noise)
    if args.replace and any(present.values()):
        _say(f"{args.schema}.cache_entries on {describe(settings)} holds rows the load replaces:")
        for environment, count in present.items():
            if count:
                _say(f"  {environment!r:<12} {count:>10,} rows would be deleted")
        if not args.yes:
            _confirm("", "replace")
    with (
        _step(
            f"loading the sample cache_entries (scale {args.scale}, seed {args.seed}) into "
            f"{describe(settings)} schema {args.schema} for {', '.join(environments)}"
        ),
        connect(settings) as conn,
    ):
        summary = sample.load_sample(
            conn,
            schema=args.schema,
            environments=environments,
            scale=args.scale,
            seed=args.seed,
            replace=args.replace,
            progress=lambda message: _say(f"  {message}"),
        )
    _say(f"  {summary}")
    return 0


# --- build / summary / demo -----------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    """dbt build per target, each skipped before dbt is even imported when nothing it reads
    changed since its last build that left nothing to do (validation/fingerprint.py; the
    steps are validation/building.py's, which ``sync`` runs too)."""
    from validation import building, fingerprint

    settings = resolve_settings(start_embedded=False)
    chosen = targets.parse_targets(args.target)
    plans: dict[str, building.BuildPlan] = {}
    for target in chosen:
        decided = building.plan_build(settings, target, args.dbt_args, force=args.force)
        if isinstance(decided, fingerprint.Recorded):
            inputs = fingerprint.inputs_for(target, args.dbt_args)
            assert inputs is not None  # a record was found for them
            _say(fingerprint.unchanged_since(decided, inputs))
        else:
            plans[target] = decided
    chosen = [target for target in chosen if target in plans]
    if not chosen:
        return 0
    from validation.dbt import environment_run_lock, run_dbt, run_dbt_in_process

    invocations = [building.dbt_build_command(target, args.dbt_args) for target in chosen]

    def recorded(target: str, started: datetime) -> None:
        said = building.record(settings, plans[target], started)
        if said is not None:
            _say(f"  {said}")

    if len(chosen) == 1:
        started = _now()
        with (
            _step(f"dbt build --target {chosen[0]} on {describe(settings)}"),
            environment_run_lock(settings, targets.environment_for(chosen[0]), say=_say),
        ):
            run_dbt(invocations[0], settings)
            recorded(chosen[0], started)
        return 0

    started_at: dict[int, datetime] = {}

    @contextmanager
    def each(index: int) -> Iterator[None]:
        target = chosen[index]
        with (
            _step(f"dbt build --target {target} on {describe(settings)} (in this process)"),
            environment_run_lock(settings, targets.environment_for(target), say=_say),
        ):
            started_at[index] = _now()
            yield

    def after_each(index: int) -> None:
        recorded(chosen[index], started_at[index])

    run_dbt_in_process(invocations, settings, before_each=each, after_each=after_each)
    return 0


def _now() -> datetime:
    return datetime.now(UTC)


def cmd_sync(args: argparse.Namespace) -> int:
    """Stay up and keep the tables in sync: validation/sync.py."""
    from validation import sync

    chosen = targets.parse_targets(args.target)
    sync.watched_inputs(chosen, args.dbt_args)  # what it refuses, it refuses before connecting
    settings = resolve_settings(start_embedded=False)
    return sync.run(
        settings, chosen, interval=args.interval, listen=args.listen, dbt_args=args.dbt_args,
        say=_say,
    )  # fmt: skip


def target_path(target: str) -> list[str]:
    """dbt's --target-path for a harness run of ``target`` (validation/targets.py)."""
    return ["--target-path", str(targets.harness_target_path(target))]


def locate_tables(args: argparse.Namespace, settings: dict[str, str]) -> targets.Tables:
    """Where the target's tables are (validation/targets.py): --schema or DBT_SCHEMA, else
    the newest build of the target's environment in the database's run logs, else public."""
    with connect(settings) as conn:
        return targets.locate(
            conn,
            args.target,
            schema=getattr(args, "schema", None),
            source_schema=getattr(args, "source_schema", None),
        )


def cmd_validate(args: argparse.Namespace) -> int:
    from validation.validate import format_report, run_validation

    json_path = writable_file(args.json, "--json") if args.json else None
    settings = resolve_settings(start_embedded=False)
    started = time.perf_counter()
    report = run_validation(
        settings,
        args.target,
        manifest_path=Path(args.manifest) if args.manifest else None,
        schema=args.schema,
        source_schema=args.source_schema,
        docs_dir=REPORTS_DIR / "data_docs" / args.target,
        expectations_path=Path(args.expectations) if args.expectations else None,
        progress=lambda message: _say(f"  {message}"),
        timings_mode=args.timings,
    )
    _say(format_report(report))
    if json_path is not None:
        import json

        from validation.validate import report_as_dict

        try:
            json_path.write_text(
                json.dumps(report_as_dict(report), indent=2, default=str) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            raise UserFacingError(
                f"The validation ran (exit {report.exit_code} above) but its JSON could not be "
                f"written to {json_path} ({exc.strerror}); rerun with --json naming a writable "
                "file."
            ) from exc
        _say(f"result as JSON: {json_path}")
    _say(f"validation took {time.perf_counter() - started:.1f} s in all")
    return report.exit_code


def writable_file(path_text: str, option: str) -> Path:
    """The file an output option names, checked before any work is done: its directory exists
    and a file can be created there (a probe file, removed at once), and it is no directory."""
    path = Path(path_text)
    if path.is_dir():
        raise UserFacingError(
            f"{option} {path} is a directory; name a file, e.g. {path / 'validation.json'}."
        )
    _probe_directory(path.parent, f"{option} {path}: its directory")
    return path


def writable_directory(path: Path, option: str) -> Path:
    """The directory an output option names, created when missing and checked writable before
    any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFacingError(
            f"{option} {path}: the directory cannot be created ({exc.strerror}); name a "
            f"directory you can write to with {option} DIR."
        ) from exc
    _probe_directory(path, f"{option} {path}")
    return path


def _probe_directory(directory: Path, described: str) -> None:
    import tempfile

    if not directory.is_dir():
        raise UserFacingError(
            f"{described} {directory} does not exist; create it, or name a file in an existing "
            "directory."
        )
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise UserFacingError(
            f"{described} {directory} cannot be written to ({exc.strerror}); name a place you "
            "can write to."
        ) from exc


def migration_summary(settings: dict[str, str], tables: targets.Tables) -> list[str]:
    """Readable lines describing what the marts hold for one environment."""
    from psycopg import sql

    environment = targets.environment_for(tables.target)
    groups = sql.Identifier(tables.groups.schema, tables.groups.name)
    memberships = sql.Identifier(tables.memberships.schema, tables.memberships.name)
    with connect(settings) as conn:
        per_type = conn.execute(
            sql.SQL(
                "select type, count(*) from {} where environment = %s group by type order by type"
            ).format(groups),
            (environment,),
        ).fetchall()
        totals = conn.execute(
            sql.SQL(
                "select count(*), count(distinct symbol) from {} m join {} g on g.id = m.group_id "
                "where g.environment = %s"
            ).format(memberships, groups),
            (environment,),
        ).fetchone()
        exceptions_table = sql.Identifier(tables.exceptions.schema, tables.exceptions.name)
        exceptions = conn.execute(
            sql.SQL(
                "select severity, reason, count(*) from {} group by 1, 2 order by 1, 3 desc"
            ).format(exceptions_table)
        ).fetchall()
    assert totals is not None
    lines = [f"environment {environment}:"]
    lines.append("  groups: " + ", ".join(f"{kind} {count}" for kind, count in per_type))
    lines.append(f"  memberships: {totals[0]:,}; distinct symbols: {totals[1]:,}")
    described = ", ".join(
        f"{reason} {count} ({severity})" for severity, reason, count in exceptions
    )
    lines.append(f"  exceptions: {described or 'none'}")
    lines.append(f"    (one row each, with the reason, in {tables.exceptions})")
    return lines


def demo_database(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    """Where the demo works, and whether it may replace the sample rows there.

    On the embedded server (the project's own) it uses that server's database.  On a server the
    PG* variables point at, it works in a database of its own (``--database``, default
    sprint59_demo), created and marked by the harness; in a database it did not create it only
    loads into an empty cache_entries, so nobody's rows are ever replaced."""
    from validation import ownership

    if not external_server_configured():
        settings = resolve_settings(start_embedded=True)
        _ensure_demo_role(settings)
        return settings, True
    name = ownership.check_database_name(args.database or DEMO_DATABASE)
    settings = resolve_settings(start_embedded=False)
    state = ownership.database_state(settings, name)
    where = describe(settings)
    if state == "missing":
        ownership.create_owned_database(settings, name, "demo")
        _say(f"→ the demo works in a database of its own: created {name} on {where}")
    elif state == "owned":
        _say(f"→ the demo works in its own database {name} on {where} (made by an earlier demo)")
    else:
        _say(
            f"→ the demo works in the existing database {name} on {where}; it was not created "
            "by the demo, so the sample is loaded only if its cache_entries has no DEFAULT rows"
        )
    return {**settings, "PGDATABASE": name}, state != "foreign"


def _ensure_demo_role(settings: dict[str, str]) -> None:
    """The demo's embedded server gets the analyst role the marts grant to (roles are
    server-wide: the build itself never creates one)."""
    from psycopg import sql

    with connect(settings, autocommit=True) as conn:
        if conn.execute("select 1 from pg_roles where rolname = 'analyst'").fetchone() is None:
            conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier("analyst")))


def cmd_demo(args: argparse.Namespace) -> int:
    from validation import sample
    from validation.dbt import environment_run_lock, run_dbt

    embedded = not external_server_configured()
    settings, owned = demo_database(args)
    with (
        _step(f"loading the sample cache_entries into {describe(settings)}"),
        connect(settings) as conn,
    ):
        sample.load_sample(
            conn,
            schema="public",
            environments=("DEFAULT",),
            replace=owned,
            progress=lambda m: _say(f"  {m}"),
        )
    with (
        _step("dbt build --target default (seed, models, tests, unit tests)"),
        environment_run_lock(settings, "DEFAULT", say=_say),
    ):
        run_dbt(["build", "--target", "default", *target_path("default")], settings)
    with _step("dbt source freshness --target default (the sample was just loaded: PASS)"):
        run_dbt(["source", "freshness", "--target", "default", *target_path("default")], settings)
    from validation.validate import format_report, run_validation

    with _step("validating with Great Expectations (counts, integrity, parity, timings)"):
        report = run_validation(
            settings,
            "default",
            docs_dir=REPORTS_DIR / "data_docs" / "default",
            progress=lambda message: _say(f"  {message}"),
        )
    _say(format_report(report))
    _say("")
    with connect(settings) as conn:
        tables = targets.locate(conn, "default")
    for line in migration_summary(settings, tables):
        _say(line)
    _say("")
    prefix = "" if embedded else f"PGDATABASE={shlex.quote(settings['PGDATABASE'])} "
    if owned:
        for line in demo_history(settings, tables.groups.schema, prefix):
            _say(line)
    else:
        _say("history: the scripted rebalance changes cache_entries, so it runs only in a")
        _say("  database the demo created; see README, 'Membership history'.")
    _say("")
    _say(f"  data docs:   {report.docs_index}")
    artifacts, logs = _shown(targets.harness_target_path("default")), _shown(PROJECT_ROOT / "logs")
    _say(f"  dbt artifacts: {artifacts}/ (run_results.json, manifest.json); logs: {logs}/dbt.log")
    if embedded:
        info = server.status()
        assert info is not None
        _say(f"  connect:     psql {shlex.quote(info.url())}")
        _say(f"  stop server: {harness_command()} db stop")
    else:
        _say(f"  connect:     psql (your PG* settings, with PGDATABASE={settings['PGDATABASE']})")
        _say(f"  query it:    {prefix}{harness_command()} query etf SPY")
    return report.exit_code


def _shown(path: Path) -> str:
    """A path as the user can use it here: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def demo_history(settings: dict[str, str], schema: str, prefix: str) -> list[str]:
    """The demo's last act: a scripted rebalance of SPY in the sample, an incremental build that
    publishes it, and the history's answer to 'what changed in SPY since just before?'."""
    from validation import sample
    from validation.dbt import environment_run_lock, run_dbt
    from validation.query import ask, render

    with (
        _step("a rebalance of SPY in the sample: its last 3 holdings out, 3 others in"),
        connect(settings) as conn,
    ):
        change = sample.rebalance_etf(conn, "SPY", environment="DEFAULT")
    with (
        _step("dbt build --target default (the incremental run publishes it, history included)"),
        environment_run_lock(settings, "DEFAULT", say=_say),
    ):
        exclude = ["--exclude", "resource_type:unit_test"]
        run_dbt(["build", "--target", "default", *exclude, *target_path("default")], settings)
    since = change.before.isoformat(timespec="seconds")
    command = harness_command()
    answer = ask(
        settings, "changes", ["SPY"], environment="DEFAULT", schema=schema,
        history={"as_of": None, "since": since, "until": None},
    )  # fmt: skip
    return [
        f"history: SPY was rebalanced at {since} UTC (out: {', '.join(change.removed)}; "
        f"in: {', '.join(change.added)}) and rebuilt; the history answers",
        f"  $ {prefix}{command} query changes SPY --since {since}",
        *(f"  {line}" for line in render(answer, "table").splitlines()),
        f"  before it: {prefix}{command} query etf SPY --as-of {since}",
        f"  and:       {prefix}{command} query symbol {change.removed[0]} --as-of {since}",
    ]


def cmd_query(args: argparse.Namespace) -> int:
    from validation.privileges import require_select
    from validation.query import ask, render, tables_read, visible

    needed = {"etf": 1, "theme": 1, "symbol": 1, "overlap": 2, "sector": 0, "changes": 1}[
        args.question
    ]
    if len(args.names) < needed or len(args.names) > max(needed, 1):
        raise UserFacingError(
            f"'query {args.question}' takes {needed or 'an optional'} name"
            f"{'s' if needed > 1 else ''}; e.g. 'query etf SPY', 'query overlap SPY VOO'."
        )
    if (args.since or args.until) and args.question != "changes":
        raise UserFacingError("--since and --until go with 'query changes NAME'; use --as-of.")
    if args.raw and args.format != "csv":
        raise UserFacingError("--raw goes with --format csv (it turns off the formula guard).")
    settings = resolve_settings(start_embedded=False)
    tables = locate_tables(args, settings)
    read = tables_read(args.question, args.names, history=bool(args.as_of))
    with connect(settings) as conn:
        require_select(conn, [targets.Relation(tables.groups.schema, name) for name in read])
    answer = ask(
        settings,
        args.question,
        args.names,
        environment=targets.environment_for(args.target),
        schema=tables.groups.schema,
        looked_in=_looked_in(tables, settings),
        history={"as_of": args.as_of, "since": args.since, "until": args.until},
    )
    for note in answer.notes:
        print(f"note: {visible(note)}", file=sys.stderr, flush=True)
    _say(render(answer, args.format, raw=args.raw))
    return 0


# --- operations -----------------------------------------------------------------------------


def _looked_in(tables: targets.Tables, settings: dict[str, str]) -> str:
    """Where a command looked for the tables, and why there (for its error messages)."""
    return tables.looked_in().replace(" (looked in", f" (looked in {describe(settings)},", 1)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def cmd_backup(args: argparse.Namespace) -> int:
    from validation import operations

    directory = writable_directory(Path(args.out) if args.out else operations.BACKUP_DIR, "--out")
    settings = resolve_settings(start_embedded=False)
    environment = targets.environment_for(args.target)
    tables = locate_tables(args, settings)
    with _step(f"backing up {environment} from {describe(settings)}"):
        made = operations.backup(
            settings,
            environment,
            schema=tables.groups.schema,
            source_schema=tables.cache.schema,
            directory=directory,
            say=lambda m: _say(f"  {m}"),
            looked_in=_looked_in(tables, settings),
        )
    groups, memberships = (made.left_out[t] for t in ("definition_groups", "group_memberships"))
    _say(
        f"left out {_plural(groups, 'group')} and {_plural(memberships, 'membership')} written "
        f"by others ({environment} rows not in the migration's ledger: restore never writes them)"
    )
    _say(f"backup:   {made.path}")
    _say(f"checksum: {made.checksum_path} (the dump and its .json)")
    _say(f"restore:  {harness_command()} restore {shlex.quote(str(made.path))}")
    return 0


def _plan_lines(changes: dict[str, object], environment: str, *, restore: bool) -> list[str]:
    """One aligned line per table: what goes, what stays, what comes from the backup."""
    from validation import operations

    width = max(map(len, changes), default=0)
    lines = []
    for table, change in changes.items():
        assert isinstance(change, operations.Change)
        if table in operations.HISTORY_TABLES and not restore:
            periods = f"close {change.delete:>10,} open periods (closed now, kept)"
            lines.append(f"  {table:<{width}} {periods}")
            continue
        if table in operations.ANALYST_TABLES:
            lines.append(
                f"  {table:<{width}} delete {change.delete:>10,} {environment} rows "
                "(derived: the next build recomputes them)"
            )
            continue
        owned = table in ("definition_groups", "group_memberships")
        what = "rows the migration wrote" if owned else "rows"
        line = f"  {table:<{width}} delete {change.delete:>10,} {environment} {what}"
        if owned:
            line += f", keep {change.keep:>8,}"
        if change.insert is not None:
            line += f", insert {change.insert:>10,} from the backup"
        lines.append(line)
    return lines


def cmd_restore(args: argparse.Namespace) -> int:
    from validation import operations

    settings = resolve_settings(start_embedded=False)
    path = Path(args.file)
    meta = operations.verify(path)
    _say(f"{path.name}: environment {meta['environment']}, checksum OK (dump and metadata)")

    def confirm(plan: operations.RestorePlan) -> None:
        where = f"{plan.environment} in schema {plan.schema}"
        if (plan.environment, plan.schema) != (plan.origin_environment, plan.origin_schema):
            where += f" (the backup is of {plan.origin_environment} in {plan.origin_schema})"
        _say(f"restore into {where} on {describe(settings)} would replace:")
        for line in _plan_lines(dict(plan.tables), plan.environment, restore=True):
            _say(line)
        _say("  kept: rows written by others (not in the migration's ledger) stay as they are.")
        for group in plan.kept:
            rewritten = "rewritten from the backup" if group.id in plan.rewritten else "kept as is"
            _say(f"  kept group {group.describe()}; its row is {rewritten}.")
        _say(
            f"  {', '.join(operations.ANALYST_TABLES)}: recomputed for {plan.environment} by "
            "the next build (derived data)."
        )
        if not args.with_cache_entries:
            _say("  cache_entries is not touched (--with-cache-entries restores its rows too).")
        if not args.yes:
            _confirm("", plan.environment)

    with _step("restoring"):
        restored = operations.restore(
            settings,
            path,
            with_cache_entries=args.with_cache_entries,
            into_schema=args.into_schema,
            into_environment=args.into_environment,
            say=lambda m: _say(f"  {m}"),
            confirm=confirm,
        )
    _say("restored: " + ", ".join(f"{table} {rows:,}" for table, rows in restored.items()))
    target = (args.into_environment or str(meta["environment"])).lower()
    _say(
        "the analyst tables are recomputed for the environment by the next build: "
        f"{harness_command()} build --target {target}"
    )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from validation import operations

    settings = resolve_settings(start_embedded=False)
    environment = targets.environment_for(args.target)
    tables = locate_tables(args, settings)
    schema = tables.groups.schema
    plan = operations.rollback_plan(settings, environment, schema, _looked_in(tables, settings))
    _say(
        f"rollback of {environment} in schema {schema} would delete only rows the migration wrote:"
    )
    for line in _plan_lines(dict(plan.tables), environment, restore=False):
        _say(line)
    _say("  kept: rows written by others (not in the migration's ledger) stay as they are.")
    for group in plan.kept:
        _say(f"  kept group {group.describe()}; only its own memberships go.")
    _say("  cache_entries is not touched: the legacy application keeps working.")
    if not any(change.delete for change in plan.tables.values()):
        _say("nothing to delete.")
        return 0
    if not args.yes:
        _confirm("", environment)
    done = operations.rollback(settings, environment, schema)
    closed = [f"{t} {n:,} closed" for t, n in done.deleted.items() if t.endswith("_history")]
    deleted = [f"{t} {n:,}" for t, n in done.deleted.items() if not t.endswith("_history")]
    _say("deleted: " + ", ".join(deleted + closed))
    for group in done.kept:
        _say(f"kept group {group.describe()}.")
    _say(
        f"the analyst tables are recomputed for {environment} by the next build: "
        f"{harness_command()} build --target {environment.lower()}"
    )
    return 0


def _confirm(warning: str, word: str) -> None:
    if not sys.stdin.isatty():
        raise UserFacingError(
            "Refusing to change the tables without confirmation; rerun with --yes "
            "(standard input is not a terminal)."
        )
    if warning:
        _say(warning)
    answer = input(f"Type {word} to go on: ").strip()
    if answer != word:
        raise UserFacingError("Not confirmed; nothing was changed.")


def cmd_retirement(args: argparse.Namespace) -> int:
    from validation import operations
    from validation.privileges import require_select

    settings = resolve_settings(start_embedded=False)
    environment = targets.environment_for(args.target)
    tables = locate_tables(args, settings)
    with connect(settings) as conn:
        require_select(conn, [tables.readiness, tables.reconciliation])
    readiness, unexplained = operations.retirement_report(
        settings, environment, tables.readiness.schema, _looked_in(tables, settings)
    )
    _say(f"Readiness to archive cache_entries of {environment}, per cache type:")
    header = ("cache_type", "entries", "represented", "explained", "unexplained", "ready")
    rows = [(r[0], f"{r[1]:,}", f"{r[2]:,}", f"{r[3]:,}", f"{r[4]:,}", "yes" if r[6] else "no")
            for r in readiness]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for line in (header, *rows):
        _say("  " + "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)))
    for r in readiness:
        _say(f"  {r[0]}: {r[7]}")
    if unexplained:
        _say(f"{len(unexplained)} entries with an unexplained difference:")
        for cache_type, key, _name, raw_env, detail in unexplained[:50]:
            _say(f"  {cache_type} {key} ({raw_env}): {detail}")
        return 1
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    """Shadow reads (validation/shadow.py): 0 when every difference is explained, 1 when one
    is not, 2 on an error, 4 for a missing privilege."""
    import json

    from validation import shadow
    from validation.privileges import require_select

    json_path = writable_file(args.json, "--json") if args.json else None
    settings = resolve_settings(start_embedded=False)
    tables = locate_tables(args, settings)
    with connect(settings) as conn:
        compat = shadow.compat_of(tables, conn.info.dbname)
        require_select(
            conn,
            [tables.groups, tables.memberships, tables.exceptions, tables.cache, compat],
            legacy=tables.cache,
        )
        from psycopg import sql

        missing = [
            str(relation)
            for relation in (tables.groups, tables.memberships, tables.exceptions, tables.cache,
                             compat)
            if conn.execute(
                "select to_regclass(%s)",
                (sql.Identifier(relation.schema, relation.name).as_string(conn),),
            ).fetchone() == (None,)
        ]  # fmt: skip
        if missing:
            raise UserFacingError(
                f"{', '.join(missing)} not found{_looked_in(tables, settings)}; run "
                f"{harness_command()} build --target {args.target} first (it creates the "
                "compatibility relation), or name the schemas with --schema / --source-schema."
            )
        started = time.perf_counter()
        report = shadow.run_shadow(conn, tables, sample=args.sample)
    for line in report.lines():
        _say(line)
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserFacingError(
                f"The shadow reads ran (exit {report.exit_code}) but the JSON could not be "
                f"written to {json_path} ({exc.strerror}); rerun with --json naming a writable "
                "file."
            ) from exc
        _say(f"differences as JSON: {json_path}")
    verdict = (
        "no unexplained difference"
        if not report.exit_code
        else (f"{len(report.unexplained):,} unexplained differences")
    )
    _say(f"{verdict} ({time.perf_counter() - started:.1f} s)")
    return report.exit_code


def cmd_bench(args: argparse.Namespace) -> int:
    from validation.bench import format_summary, parse_scales, run_benchmark

    scales = parse_scales(args.scales)
    starts_server = not external_server_configured() and server.status() is None
    settings = resolve_settings(start_embedded=True)
    result = run_benchmark(
        settings,
        scales=scales,
        out_dir=Path(args.out) if args.out else PROJECT_ROOT / "docs",
        quick=args.quick,
        keep_databases=args.keep_databases,
        progress=lambda message: _say(f"  {message}"),
    )
    _say(format_summary(result))
    if starts_server:
        _say("the embedded PostgreSQL server started for this run is still running;")
        _say(f"  stop server: {harness_command()} db stop")
    return 0


def cmd_bench_environments(args: argparse.Namespace) -> int:
    from validation import bench_environments

    settings = resolve_settings(start_embedded=True)
    out_dir = Path(args.out) if args.out else PROJECT_ROOT / "docs"
    report = bench_environments.run(
        settings, out_dir=out_dir, runs=args.runs, scale=args.scale,
        progress=lambda message: _say(f"  {message}"),
    )  # fmt: skip
    _say(
        f"four environments: one call {report['one_call_median']:.1f} s, four calls "
        f"{report['four_calls_median']:.1f} s (medians of {args.runs}); "
        f"wrote {out_dir / bench_environments.MARKDOWN_NAME}"
    )
    return 0


# --- wiring ---------------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "db": cmd_db,
    "load-sample": cmd_load_sample,
    "build": cmd_build,
    "sync": cmd_sync,
    "validate": cmd_validate,
    "query": cmd_query,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "rollback": cmd_rollback,
    "retirement": cmd_retirement,
    "shadow": cmd_shadow,
    "bench": cmd_bench,
    "bench-environments": cmd_bench_environments,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="platformdirs")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_dbt_options", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dbt_args = extra[1:] if extra[:1] == ["--"] else extra
    handler = HANDLERS[args.command]
    try:
        return handler(args)
    except UserFacingError as exc:
        from validation.query import visible  # a name from the tables may hold control codes

        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"interrupted: '{args.command}' stopped before it finished; run it again to finish.",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # the reader went away (`query … | head`): stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a last resort: one sentence, with where to look
        import psycopg

        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            # a privilege no command checked beforehand (validation/privileges.py): still its
            # own exit code, with the role it concerns
            user = os.environ.get("PGUSER") or "the connecting role"
            print(
                f"error: {exc.diag.message_primary or exc} for {user}; ask the owner of the "
                "object to grant it (README, 'Privileges each command needs').",
                file=sys.stderr,
            )
            return PermissionProblem.exit_code
        if isinstance(exc, psycopg.Error):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            from validation.query import visible

            print(f"error: the database refused the operation: {visible(first)}", file=sys.stderr)
            return 2
        raise
