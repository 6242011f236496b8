"""The command line's grammar: every command of ``sprint59`` (``python -m validation``), its
options and help texts.  What each command does is in validation/cli.py, which dispatches on
the command's name.
"""

from __future__ import annotations

import argparse

from validation import targets
from validation.command import harness_command

ENVIRONMENTS = targets.ENVIRONMENTS
TARGET_NAMES = list(targets.TARGETS)
DEMO_DATABASE = "sprint59_demo"  # the demo's own database on a server named by PG* variables
SCHEMA_HELP = (
    "schema of the two tables (default: $DBT_SCHEMA, else where the newest build of the "
    "target's environment put them, as the database's run logs record it, else public)"
)
SOURCE_SCHEMA_HELP = (
    "schema of cache_entries (default: the one that build read, else $DBT_SOURCE_SCHEMA, "
    "else public)"
)


def _table_options(command: argparse.ArgumentParser) -> None:
    """--schema and --source-schema: every command that reads the tables takes both."""
    command.add_argument("--schema", help=SCHEMA_HELP)
    command.add_argument("--source-schema", help=SOURCE_SCHEMA_HELP)


def build_parser() -> argparse.ArgumentParser:
    """Every command with its options; ``args.command`` names the one given (cli.HANDLERS)."""
    parser = argparse.ArgumentParser(
        prog=harness_command(),
        description=(
            "Validation harness of the cache_entries → definition_groups / group_memberships "
            "migration. Connection settings come from the PG* variables; without them the "
            "project's embedded PostgreSQL is used."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="manage the embedded PostgreSQL server")
    db.add_argument("action", choices=["start", "stop", "status", "url", "env"])

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
    load.add_argument(
        "--replace",
        action="store_true",
        help="delete the environments' existing rows first (refused without it); asks, or --yes",
    )
    load.add_argument("--yes", action="store_true", help="confirm --replace without asking")

    build = commands.add_parser(
        "build", help="run dbt build for one environment, or several in one process"
    )
    build.add_argument(
        "--target",
        default="default",
        help="default, test, uat or prod; several comma-separated (default,test,uat,prod) run "
        "one after the other in one process, importing dbt once",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="build even when nothing changed since the last build that left nothing to do "
        "(without it, such a build is skipped before dbt starts; --full-refresh always builds)",
    )
    build.set_defaults(passes_dbt_options=True)
    build.epilog = (
        "Any other option goes to dbt build as it is: --vars '{...}', --full-refresh, "
        "--select/-s, --exclude, --threads, ..."
    )

    sync = commands.add_parser(
        "sync",
        help="stay up and build each environment whenever its source changed (a warm runner; "
        "stops on SIGTERM/Ctrl-C after the run in progress)",
    )
    sync.add_argument(
        "--target",
        default="default",
        help="default, test, uat or prod; several comma-separated are watched in turn",
    )
    sync.add_argument(
        "--interval",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds between looks at the fingerprints, and before a retry (default 5)",
    )
    sync.add_argument(
        "--listen",
        metavar="CHANNEL",
        help="also wake at once on a NOTIFY on CHANNEL (the opt-in trigger a DBA installs on "
        "cache_entries: docs/operations.md); without it, polling only",
    )
    sync.set_defaults(passes_dbt_options=True)
    sync.epilog = (
        "Any other option goes to each dbt build as it is, as with build (--vars, --select, "
        "--exclude, --threads, ...; not --full-refresh)."
    )

    validate = commands.add_parser(
        "validate", help="run the Great Expectations suite for one environment"
    )
    validate.add_argument("--target", choices=TARGET_NAMES, default="default")
    _table_options(validate)
    validate.add_argument(
        "--manifest", help="take the tables from this dbt manifest.json instead (see --schema)"
    )
    validate.add_argument(
        "--expectations", help="expectations file (default validation/expectations/<target>.yml)"
    )
    validate.add_argument(
        "--json", metavar="FILE", help="also write the result as JSON (for CI) to FILE"
    )
    validate.add_argument(
        "--timings",
        choices=["gate", "report", "off"],
        default="gate",
        help="query timing budgets: gate (default; a miss alone exits 3), report (shown, never "
        "failing) or off (not measured). A data failure exits 1.",
    )

    query = commands.add_parser(
        "query",
        help="ask the migrated tables: etf SPY | symbol AAPL | sector [KEY] | theme KEY | "
        "overlap SPY VOO; the past: etf SPY --as-of 2026-06-01 | symbol NVDA --as-of D | "
        "changes SPY --since D [--until D]",
    )
    query.add_argument(
        "question", choices=["etf", "symbol", "sector", "theme", "overlap", "changes"]
    )
    query.add_argument("names", nargs="*", help="ETF, symbol, sector or theme name(s)")
    query.add_argument("--target", choices=TARGET_NAMES, default="default")
    query.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (default; control characters shown as escapes such as \\x1b), csv (a text "
        "cell starting with = + - @, a tab or CR gets a leading ' so no spreadsheet runs it as "
        "a formula) or json",
    )
    query.add_argument(
        "--raw",
        action="store_true",
        help="with --format csv: every cell exactly as stored, without the formula guard",
    )
    query.add_argument(
        "--as-of",
        help="answer etf/theme/sector/symbol from the history, as of a date (its end) or "
        "date-time, UTC",
    )
    query.add_argument("--since", help="changes: from this date (its start) or date-time, UTC")
    query.add_argument("--until", help="changes: to this date (its end) or date-time; default now")
    _table_options(query)

    backup = commands.add_parser(
        "backup",
        help="pg_dump one environment's rows the migration wrote (two tables, their ledger, "
        "history, its cache_entries)",
    )
    backup.add_argument("--target", choices=TARGET_NAMES, required=True)
    _table_options(backup)
    backup.add_argument(
        "--out", help="directory for the dump and its .sha256 / .json (default: backups/)"
    )

    restore = commands.add_parser(
        "restore",
        help="put a verified backup's rows back, where they came from (rows written by others "
        "stay)",
    )
    restore.add_argument("file", help="the .dump file (its .sha256 and .json must be beside it)")
    restore.add_argument(
        "--into-schema",
        metavar="SCHEMA",
        help="restore into this schema instead of the one the backup came from",
    )
    restore.add_argument(
        "--into-environment",
        metavar="ENV",
        type=str.upper,
        choices=ENVIRONMENTS,
        help="restore into this environment instead of the backup's (the rows' environment is "
        "rewritten; refused if their ids or names are taken there)",
    )
    restore.add_argument(
        "--with-cache-entries", action="store_true", help="also restore its cache_entries rows"
    )
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    rollback = commands.add_parser(
        "rollback",
        help="remove one environment's rows the migration wrote from the new tables (never "
        "rows others wrote, never cache_entries)",
    )
    rollback.add_argument("--target", choices=TARGET_NAMES, required=True)
    _table_options(rollback)
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    retirement = commands.add_parser(
        "retirement", help="which legacy cache types are fully represented and can be archived"
    )
    retirement.add_argument("--target", choices=TARGET_NAMES, default="default")
    _table_options(retirement)

    shadow = commands.add_parser(
        "shadow",
        help="replay the application's reads (an ETF's holdings, a theme, a universe, a "
        "sector's members, a symbol's groups, the compatibility relation) against the legacy "
        "JSON and the new tables; exit 1 on a difference no exception explains",
    )
    shadow.add_argument("--target", choices=TARGET_NAMES, default="default")
    _table_options(shadow)
    shadow.add_argument(
        "--sample",
        type=_positive_int,
        metavar="N",
        help="read N entries of each cache type (the same N on every run) instead of all; the "
        "compatibility relation's round trip still reads every entry",
    )
    shadow.add_argument(
        "--json", metavar="FILE", help="also write every difference as JSON (for CI) to FILE"
    )

    bench = commands.add_parser(
        "bench", help="benchmark builds and query latency at several scales (writes docs/)"
    )
    bench.add_argument("--scales", default="1,10,100", help="comma-separated (default 1,10,100)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--out", help="output directory (default docs/)")
    bench.add_argument(
        "--keep-databases", action="store_true", help="keep the bench_s<N> databases"
    )

    environments = commands.add_parser(
        "bench-environments",
        help="benchmark: four environments built by one call against four (writes docs/)",
    )
    environments.add_argument("--runs", type=_positive_int, default=3, help="runs of each way")
    environments.add_argument("--scale", type=_positive_int, default=1, help="sample scale")
    environments.add_argument("--out", help="output directory (default docs/)")

    demo = commands.add_parser(
        "demo", help="start the server, load the sample, build, validate and summarise"
    )
    demo.add_argument(
        "--database",
        help=f"on a server named by PG* variables: the database to work in (default "
        f"{DEMO_DATABASE}, created by the demo)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value
