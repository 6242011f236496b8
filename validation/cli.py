"""Command line: ``python -m validation <command>``.  Errors are one sentence, never a traceback."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from validation import server
from validation.connection import PROJECT_ROOT, connect, describe, external_server_configured
from validation.errors import UserFacingError

REPORTS_DIR = PROJECT_ROOT / "reports"

ENVIRONMENTS = ("DEFAULT", "TEST", "UAT", "PROD")


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
                "the embedded one with 'python -m validation db start'."
            )
        with _step(f"starting the embedded PostgreSQL server in {server.DEFAULT_PGDATA}"):
            info = server.start()
    return info.settings()


# --- db -------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "start":
        info = server.start()
        _say(f"embedded PostgreSQL running (pid {info.pid}), data in {info.pgdata}")
        _say(f"  connect:  psql '{info.url()}'")
        _say('  use it:   eval "$(python -m validation db env)"')
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
            "'python -m validation db start'."
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
    settings = resolve_settings(start_embedded=True)
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
            progress=lambda message: _say(f"  {message}"),
        )
    _say(f"  {summary}")
    return 0


# --- build / summary / demo -----------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    from validation.dbt import environment_run_lock, run_dbt

    settings = resolve_settings(start_embedded=False)
    with (
        _step(f"dbt build --target {args.target} on {describe(settings)}"),
        environment_run_lock(settings, args.target.upper(), say=_say),
    ):
        run_dbt(
            ["build", "--target", args.target, *target_path(args.target), *args.dbt_args], settings
        )
    return 0


def _artifacts_root() -> Path:
    """dbt's target directory: DBT_TARGET_PATH (dbt's own variable) when set, else target/."""
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else PROJECT_ROOT / "target"


def target_path(target: str) -> list[str]:
    """dbt artifacts per target (<target dir>/<target>/), so validating one environment never
    reads another environment's manifest."""
    return ["--target-path", str(_artifacts_root() / target)]


def manifest_for(target: str) -> Path:
    """The manifest of the last harness build of ``target``, else of the last plain dbt run."""
    root = _artifacts_root()
    per_target = root / target / "manifest.json"
    return per_target if per_target.exists() else root / "manifest.json"


def cmd_validate(args: argparse.Namespace) -> int:
    from validation.validate import format_report, run_validation

    settings = resolve_settings(start_embedded=False)
    started = time.perf_counter()
    report = run_validation(
        settings,
        args.target,
        manifest_path=Path(args.manifest) if args.manifest else manifest_for(args.target),
        docs_dir=REPORTS_DIR / "data_docs" / args.target,
        expectations_path=Path(args.expectations) if args.expectations else None,
        progress=lambda message: _say(f"  {message}"),
    )
    _say(format_report(report))
    _say(f"validation took {time.perf_counter() - started:.1f} s in all")
    return 0 if report.success else 1


def migration_summary(settings: dict[str, str], environment: str, schema: str) -> list[str]:
    """Readable lines describing what the marts hold for one environment."""
    from psycopg import sql

    groups = sql.Identifier(schema, "definition_groups")
    memberships = sql.Identifier(schema, "group_memberships")
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
        exceptions_table = sql.Identifier(
            f"{schema}_intermediate_{environment.lower()}", "int_migration_exceptions"
        )
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
    lines.append(
        f"    (one row each, with the reason, in {schema}_intermediate_{environment.lower()}"
        ".int_migration_exceptions)"
    )
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    from validation import sample
    from validation.dbt import environment_run_lock, run_dbt

    embedded = not external_server_configured()
    settings = resolve_settings(start_embedded=True)
    schema = os.environ.get("DBT_SCHEMA", "public")
    with (
        _step(f"loading the sample cache_entries into {describe(settings)}"),
        connect(settings) as conn,
    ):
        sample.load_sample(
            conn, schema="public", environments=("DEFAULT",), progress=lambda m: _say(f"  {m}")
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
            manifest_path=manifest_for("default"),
            docs_dir=REPORTS_DIR / "data_docs" / "default",
            progress=lambda message: _say(f"  {message}"),
        )
    _say(format_report(report))
    _say("")
    for line in migration_summary(settings, "DEFAULT", schema):
        _say(line)
    _say("")
    _say(f"  data docs:   {report.docs_index}")
    _say("  dbt artifacts: target/default/ (run_results.json, manifest.json); logs: logs/dbt.log")
    if embedded:
        info = server.status()
        assert info is not None
        _say(f"  connect:     psql '{info.url()}'")
        _say("  stop server: python -m validation db stop")
    else:
        _say(f"  connect:     psql (your PG* settings: {describe(settings)})")
    return 0 if report.success else 1


def cmd_query(args: argparse.Namespace) -> int:
    from validation.query import ask, render

    needed = {"etf": 1, "theme": 1, "symbol": 1, "overlap": 2, "sector": 0}[args.question]
    if len(args.names) < needed or len(args.names) > max(needed, 1):
        raise UserFacingError(
            f"'query {args.question}' takes {needed or 'an optional'} name"
            f"{'s' if needed > 1 else ''}; e.g. 'query etf SPY', 'query overlap SPY VOO'."
        )
    settings = resolve_settings(start_embedded=False)
    answer = ask(
        settings,
        args.question,
        args.names,
        environment=args.target.upper(),
        schema=args.schema or os.environ.get("DBT_SCHEMA", "public"),
    )
    _say(render(answer, args.format))
    return 0


# --- operations -----------------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> str:
    return getattr(args, "schema", None) or os.environ.get("DBT_SCHEMA", "public")


def cmd_backup(args: argparse.Namespace) -> int:
    from validation import operations

    settings = resolve_settings(start_embedded=False)
    environment = args.target.upper()
    with _step(f"backing up {environment} from {describe(settings)}"):
        made = operations.backup(
            settings,
            environment,
            schema=_schema(args),
            source_schema=args.source_schema,
            say=lambda m: _say(f"  {m}"),
        )
    _say(f"backup:   {made.path}")
    _say(f"checksum: {made.checksum_path}")
    _say(f"restore:  python -m validation restore {made.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from validation import operations

    settings = resolve_settings(start_embedded=False)
    path = Path(args.file)
    meta = operations.verify(path)
    _say(f"{path.name}: environment {meta['environment']}, checksum OK, rows {meta['rows']}")
    if not args.yes:
        _confirm(
            f"This replaces every {meta['environment']} row of definition_groups and "
            f"group_memberships{' and cache_entries' if args.with_cache_entries else ''} "
            "with the backup's.",
            str(meta["environment"]),
        )
    with _step("restoring"):
        restored = operations.restore(
            settings, path, with_cache_entries=args.with_cache_entries, say=lambda m: _say(f"  {m}")
        )
    _say("restored: " + ", ".join(f"{table} {rows:,}" for table, rows in restored.items()))
    _say(
        f"the analyst tables refresh on the next build: "
        f"python -m validation build --target {str(meta['environment']).lower()}"
    )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from validation import operations

    settings = resolve_settings(start_embedded=False)
    environment = args.target.upper()
    schema = _schema(args)
    plan = operations.rollback_plan(settings, environment, schema)
    _say(f"rollback of {environment} in schema {schema} would delete:")
    for table, rows in plan.items():
        _say(f"  {table:<20} {rows:>10,} rows")
    _say("  cache_entries is not touched: the legacy application keeps working.")
    if not any(plan.values()):
        _say("nothing to delete.")
        return 0
    if not args.yes:
        _confirm("", environment)
    deleted = operations.rollback(settings, environment, schema)
    _say("deleted: " + ", ".join(f"{table} {rows:,}" for table, rows in deleted.items()))
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

    settings = resolve_settings(start_embedded=False)
    environment = args.target.upper()
    readiness, unexplained = operations.retirement_report(settings, environment, _schema(args))
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
        _say("  stop server: python -m validation db stop")
    return 0


# --- wiring ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description=(
            "Validation harness of the cache_entries → definition_groups / group_memberships "
            "migration. Connection settings come from the PG* variables; without them the "
            "project's embedded PostgreSQL is used."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="manage the embedded PostgreSQL server")
    db.add_argument("action", choices=["start", "stop", "status", "url", "env"])
    db.set_defaults(handler=cmd_db)

    load = commands.add_parser("load-sample", help="load the deterministic sample cache_entries")
    load.add_argument("--schema", default="public", help="schema of cache_entries (default public)")
    load.add_argument(
        "--environment",
        action="append",
        choices=ENVIRONMENTS,
        help="environment to load (repeatable; default DEFAULT)",
    )
    load.add_argument("--all-environments", action="store_true", help="load all four")
    load.add_argument(
        "--scale", type=_positive_int, default=1, help="multiply ETFs, themes, symbols"
    )
    load.add_argument("--seed", type=int, default=59, help="random seed (default 59)")
    load.set_defaults(handler=cmd_load_sample)

    build = commands.add_parser("build", help="run dbt build for one environment")
    build.add_argument("--target", choices=["default", "test", "uat", "prod"], default="default")
    build.add_argument("dbt_args", nargs=argparse.REMAINDER, help="extra dbt arguments")
    build.set_defaults(handler=cmd_build)

    validate = commands.add_parser(
        "validate", help="run the Great Expectations suite for one environment"
    )
    validate.add_argument("--target", choices=["default", "test", "uat", "prod"], default="default")
    validate.add_argument("--manifest", help="dbt manifest.json (default: the target's last build)")
    validate.add_argument(
        "--expectations", help="expectations file (default validation/expectations/<target>.yml)"
    )
    validate.set_defaults(handler=cmd_validate)

    query = commands.add_parser(
        "query",
        help="ask the migrated tables: etf SPY | symbol AAPL | sector [KEY] | theme KEY | "
        "overlap SPY VOO",
    )
    query.add_argument("question", choices=["etf", "symbol", "sector", "theme", "overlap"])
    query.add_argument("names", nargs="*", help="ETF, symbol, sector or theme name(s)")
    query.add_argument("--target", choices=["default", "test", "uat", "prod"], default="default")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--schema", help="schema of the tables (default $DBT_SCHEMA or public)")
    query.set_defaults(handler=cmd_query)

    backup = commands.add_parser(
        "backup", help="pg_dump one environment's rows (two tables + its cache_entries)"
    )
    backup.add_argument("--target", choices=["default", "test", "uat", "prod"], required=True)
    backup.add_argument("--schema", help="schema of the two tables (default $DBT_SCHEMA or public)")
    backup.add_argument("--source-schema", default="public", help="schema of cache_entries")
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser("restore", help="put a verified backup back")
    restore.add_argument("file", help="the .dump file (its .sha256 and .json must be beside it)")
    restore.add_argument(
        "--with-cache-entries", action="store_true", help="also restore its cache_entries rows"
    )
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(handler=cmd_restore)

    rollback = commands.add_parser(
        "rollback", help="remove one environment's rows from the new tables (never cache_entries)"
    )
    rollback.add_argument("--target", choices=["default", "test", "uat", "prod"], required=True)
    rollback.add_argument("--schema", help="schema of the tables (default $DBT_SCHEMA or public)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.set_defaults(handler=cmd_rollback)

    retirement = commands.add_parser(
        "retirement", help="which legacy cache types are fully represented and can be archived"
    )
    retirement.add_argument(
        "--target", choices=["default", "test", "uat", "prod"], default="default"
    )
    retirement.add_argument("--schema", help="schema of the tables (default $DBT_SCHEMA or public)")
    retirement.set_defaults(handler=cmd_retirement)

    bench = commands.add_parser(
        "bench", help="benchmark builds and query latency at several scales (writes docs/)"
    )
    bench.add_argument("--scales", default="1,10,100", help="comma-separated (default 1,10,100)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--out", help="output directory (default docs/)")
    bench.add_argument(
        "--keep-databases", action="store_true", help="keep the bench_s<N> databases"
    )
    bench.set_defaults(handler=cmd_bench)

    demo = commands.add_parser(
        "demo", help="start the server, load the sample, build, validate and summarise"
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="platformdirs")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a last resort: one sentence, with where to look
        import psycopg

        if isinstance(exc, psycopg.Error):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"error: the database refused the operation: {first}", file=sys.stderr)
            return 2
        raise
