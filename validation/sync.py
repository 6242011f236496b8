"""``sprint59 sync``: a warm runner that keeps the tables in sync with ``cache_entries``
(docs/operations.md).

It stays up with dbt loaded in this process and one parsed manifest per target, parsed again
only when the fingerprint's code part changes (the project's files, the variables they name,
the options, dbt's versions: fingerprint.code_digest).  Every interval (or at once, with
``--listen``, when a DBA's opt-in trigger on cache_entries sends a NOTIFY) it takes each
watched environment's fingerprint and builds the environment only when it differs from the one
recorded by its last build that left nothing to change -- the steps of ``sprint59 build``
(validation/building.py): the same dbt command and options, the same session run lock, the
run claim of dbt's first hook (a plain ``dbt build`` of the environment beside it stops before
changing anything while a run holds the claim), the same recording.

One line per pass and environment, on stdout: ``<UTC time> <ENV> nothing changed …``,
``… built run N in X s; …`` or ``… failed: <why>; retrying in S s``.  A lost connection, a
server restart and a failed dbt run are such lines, never a traceback: the next pass
reconnects.  SIGTERM or SIGINT stops it after the run in progress (exit 0); a second one
aborts that run (exit 130).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from validation import building, fingerprint
from validation.connection import PROJECT_ROOT, connect, describe
from validation.errors import UserFacingError

# dbt's own console lines would bury the one line per pass: they go to its log file
# (logs/dbt.log, or $DBT_LOG_PATH) only.  An explicit --log-level among the options wins.
DBT_CONSOLE = ("--log-level", "none")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WAIT_STEP = 0.5  # seconds between looks at the stop flag (and the LISTEN connection)


@dataclass
class Stop:
    """The stop signals received: the first asks to stop after the run in progress; the
    second aborts it (KeyboardInterrupt, raised by the handler)."""

    received: list[int] = field(default_factory=list)

    @property
    def requested(self) -> bool:
        return bool(self.received)


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """SIGTERM and SIGINT set the flag instead of interrupting: a dbt run in progress (in
    this process) finishes, and the loop ends after it."""
    stop = Stop()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.received.append(signum)
        if len(stop.received) > 1:
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)


@dataclass
class WarmDbt:
    """dbt loaded once, with one parsed manifest per target, reused by every build of the
    target until the fingerprint's code part (what the parse read) changes."""

    project_dir: Path = PROJECT_ROOT
    manifests: dict[str, tuple[str, Any]] = field(default_factory=dict)  # target: (code, it)
    parses: int = 0

    def _common(self) -> list[str]:
        from validation.dbt import ensure_profiles

        profiles = ensure_profiles(self.project_dir)
        return ["--project-dir", str(self.project_dir), "--profiles-dir", str(profiles)]

    def manifest(self, inputs: fingerprint.BuildInputs, code: str) -> Any:
        known = self.manifests.get(inputs.target)
        if known is not None and known[0] == code:
            return known[1]
        from dbt.cli.main import dbtRunner

        from validation.dbt import failure_cause

        command = building.dbt_build_command(inputs.target, [*DBT_CONSOLE, *vars_options(inputs)])
        result = dbtRunner().invoke(["parse", *command[1:], *self._common()])
        if not result.success:
            raise UserFacingError(f"dbt parse failed: {failure_cause(result)}")
        self.manifests[inputs.target] = (code, result.result)
        self.parses += 1
        return result.result

    def build(self, inputs: fingerprint.BuildInputs, code: str) -> None:
        """``dbt build`` of the harness (building.dbt_build_command), in this process."""
        from dbt.cli.main import dbtRunner

        from validation.dbt import failure_cause

        manifest = self.manifest(inputs, code)
        command = building.dbt_build_command(inputs.target, [*DBT_CONSOLE, *inputs.dbt_args])
        result = dbtRunner(manifest=manifest).invoke([*command, *self._common()])
        if not result.success:
            raise UserFacingError(failure_cause(result))


def vars_options(inputs: fingerprint.BuildInputs) -> list[str]:
    """The --vars among the build's options: the parse must see them too."""
    args, kept = list(inputs.dbt_args), []
    for index, arg in enumerate(args):
        if arg == "--vars" and index + 1 < len(args):
            kept += args[index : index + 2]
        elif arg.startswith("--vars="):
            kept.append(arg)
    return kept


@dataclass
class Watch:
    """The runner's one connection for fingerprints (and LISTEN): opened when needed, dropped
    when lost, opened again on the next pass."""

    settings: Mapping[str, str]
    listen: str | None = None
    conn: psycopg.Connection[Any] | None = None

    def connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.settings, autocommit=True)
            if self.listen:
                self.conn.execute(sql.SQL("listen {}").format(sql.Identifier(self.listen)))
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            with suppress(psycopg.Error):
                self.conn.close()
        self.conn = None

    def wait(self, seconds: float, stop: Stop) -> None:
        """Up to ``seconds``; less when a stop signal or a NOTIFY on the channel comes."""
        deadline = time.monotonic() + seconds
        while not stop.requested and (left := deadline - time.monotonic()) > 0:
            step = min(WAIT_STEP, left)
            if self.listen and self.conn is not None and not self.conn.closed:
                try:
                    if list(self.conn.notifies(timeout=step, stop_after=1)):
                        return
                except psycopg.OperationalError:
                    self.drop()  # the next pass reconnects, and says so if it cannot
            else:
                time.sleep(step)


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def sync_pass(
    watch: Watch,
    warm: WarmDbt,
    inputs: fingerprint.BuildInputs,
    interval: float,
    say: Callable[[str], None],
) -> str:
    """One look at one environment, and its build when it changed; the line that says what
    happened."""
    from validation.dbt import environment_run_lock

    retry = f"retrying in {interval:g} s"
    try:
        decided = building.decide(watch.connection(), inputs, force=False)
    except UserFacingError as exc:  # connect() could not connect: it says where and why
        watch.drop()
        return f"failed: {exc}; {retry}"
    except psycopg.Error as exc:
        if _connection_lost(exc):
            watch.drop()
            return f"failed: lost the connection ({building.first_line(exc)}); {retry}"
        decided = building.UNKNOWN  # any other doubt builds, as `build` does; dbt says why
    if isinstance(decided, fingerprint.Recorded):
        run = f"run {decided.run_number}" if decided.run_number else "the last run"
        return f"nothing changed since {run}"
    code = decided.before.code if decided.before else fingerprint.code_digest(inputs)
    started, clock = datetime.now(UTC), time.perf_counter()
    try:
        with environment_run_lock(
            watch.settings, inputs.environment, schema=inputs.schema,
            say=lambda line: say(f"{_now()} {inputs.environment} {line.strip()}"),
        ):  # fmt: skip
            warm.build(inputs, code)
            recorded = building.record(watch.settings, decided, started)
    except (UserFacingError, psycopg.Error) as exc:
        if _connection_lost(exc):
            watch.drop()
        return f"failed: {building.first_line(exc)}; {retry}"
    seconds = time.perf_counter() - clock
    try:
        number = building.runs_logged(watch.connection(), inputs)
    except (UserFacingError, psycopg.Error):
        watch.drop()
        number = None
    run = f"run {number}" if number else "a run"
    return f"built {run} in {seconds:.1f} s" + (f"; {recorded}" if recorded else "")


def watched_inputs(chosen: Sequence[str], dbt_args: Sequence[str]) -> list[fingerprint.BuildInputs]:
    """Each target's build inputs; sync refuses what it could not fingerprint."""
    if fingerprint.always_builds(dbt_args):
        raise UserFacingError(
            "sync builds only what changed, and --full-refresh would rebuild on every pass; "
            "run 'sprint59 build --full-refresh' once, then start sync without it."
        )
    watched = []
    for target in chosen:
        inputs = fingerprint.inputs_for(target, dbt_args)
        if inputs is None:
            raise UserFacingError(
                f"sync cannot tell what a build of {target} reads (--vars that are no YAML "
                "mapping, an unknown environment, or an empty DBT_SCHEMA / DBT_SOURCE_SCHEMA); "
                "fix the options or the variables and start it again."
            )
        watched.append(inputs)
    return watched


def run(
    settings: Mapping[str, str],
    chosen: Sequence[str],
    *,
    interval: float,
    listen: str | None,
    dbt_args: Sequence[str],
    say: Callable[[str], None],
    project_dir: Path = PROJECT_ROOT,
) -> int:
    """Watch and build until a stop signal; 0 when stopped by one between or after runs."""
    from validation.dbt import dbt_environment, process_environment

    watched = watched_inputs(chosen, dbt_args)
    names = ", ".join(inputs.environment for inputs in watched)
    woken = f"; woken at once by NOTIFY on channel {listen}" if listen else ""
    warm, watch = WarmDbt(project_dir), Watch(settings, listen)
    with process_environment(dbt_environment(settings, terminal=False)), stop_on_signals() as stop:
        say(
            f"{_now()} sync: watching {names} on {describe(settings)} every {interval:g} s"
            f"{woken}; SIGTERM or Ctrl-C stops it after the run in progress"
        )
        try:
            while not stop.requested:
                for inputs in watched:
                    line = sync_pass(watch, warm, inputs, interval, say)
                    if len(stop.received) > 1:  # dbt caught the abort as a failed run
                        raise KeyboardInterrupt
                    say(f"{_now()} {inputs.environment} {line}")
                    if stop.requested:
                        break
                watch.wait(interval, stop)
        finally:
            watch.drop()
    name = signal.Signals(stop.received[0]).name
    say(f"{_now()} sync: stopped on {name} (dbt parsed the project {warm.parses} times)")
    return 0
