"""Running dbt for this project: from the command line (a child process) with PG* settings."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import psycopg

from validation import targets
from validation.connection import PROJECT_ROOT
from validation.errors import UserFacingError

TARGETS = tuple(targets.TARGETS)
RUN_LOCK_CLASS = targets.RUN_LOCK_CLASS


def ensure_profiles(project_dir: Path = PROJECT_ROOT) -> Path:
    """The profiles directory dbt should use: DBT_PROFILES_DIR, or the project (created from
    profiles.example.yml on first use; it holds no secret, only env_var() look-ups)."""
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"])
    profiles = project_dir / "profiles.yml"
    if not profiles.exists():
        shutil.copyfile(project_dir / "profiles.example.yml", profiles)
    return project_dir


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise UserFacingError("dbt is not installed in this environment; run 'make setup' first.")
    return found


def dbt_environment(settings: Mapping[str, str], *, terminal: bool | None = None) -> dict[str, str]:
    """The child environment for dbt: ours, the connection settings, and no telemetry.

    When dbt's output does not go to a terminal (``terminal`` False; by default: our stdout
    is not a tty, as in CI or a captured log), colours are off on the console and in
    logs/dbt.log (DBT_USE_COLORS, DBT_USE_COLORS_FILE), so no escape codes end up in saved
    output; a terminal keeps them.  A value the caller set explicitly wins either way."""
    env = dict(os.environ)
    env.update(settings)
    env["DO_NOT_TRACK"] = "1"
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    if terminal is None:
        terminal = _stdout_is_terminal()
    if not terminal:
        env.setdefault("DBT_USE_COLORS", "false")
        env.setdefault("DBT_USE_COLORS_FILE", "false")
    return env


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


@contextmanager
def environment_run_lock(
    settings: Mapping[str, str],
    environment: str,
    *,
    schema: str | None = None,
    say: Callable[[str], None] = print,
) -> Iterator[None]:
    """Hold session advisory locks while a whole dbt invocation for one environment runs.

    The marts serialise their own writes with a transaction lock, and each environment has
    its own staging/intermediate schemas, so runs of different environments can overlap
    once the two tables exist.  This lock makes a second run of the *same* environment wait
    for the first instead of racing on the working relations, and, while the tables do not
    exist yet, makes every run wait so that only one of them creates them.
    """
    from validation.connection import connect

    schema = schema or os.environ.get("DBT_SCHEMA", "public")
    conn = connect(settings, autocommit=True)
    try:
        _advisory_lock(conn, environment, f"another migration run of {environment}", say)
        found = conn.execute(
            "select to_regclass(quote_ident(%s) || '.definition_groups')", (schema,)
        ).fetchone()
        if found is None or found[0] is None:
            _advisory_lock(conn, "(bootstrap)", "another run is creating the tables", say)
        yield
    finally:
        conn.close()  # ends the session, which releases the locks


def _advisory_lock(
    conn: psycopg.Connection, key: str, holder: str, say: Callable[[str], None]
) -> None:
    params = (RUN_LOCK_CLASS, key)
    row = conn.execute("select pg_try_advisory_lock(hashtext(%s), hashtext(%s))", params).fetchone()
    if not (row and row[0]):
        say(f"  {holder} is in progress; waiting for it …")
        conn.execute("select pg_advisory_lock(hashtext(%s), hashtext(%s))", params)


# What dbt prints first when a command ends in an exception, a Ctrl-C included; its stack
# trace follows (dbt's postflight).  After an interrupt the harness shows dbt's output up to
# this line, and then says in one line of its own that it was interrupted.
DBT_ERROR_BANNER = "Encountered an error:"


class InterruptAwareOutput:
    """dbt's console output, passed through to ``out`` as it comes; once ``interrupted`` is
    set, everything from dbt's error banner on (its stack trace of the KeyboardInterrupt) is
    left out.  Its lines of cancelled queries before that stay."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.interrupted = False
        self._muted = False

    def write(self, text: str) -> int:
        if self.interrupted and DBT_ERROR_BANNER in text:
            self._muted = True
        if not self._muted:
            self.out.write(text)
            self.out.flush()
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return _stdout_is_terminal()


def run_dbt(
    args: Sequence[str],
    settings: Mapping[str, str],
    *,
    project_dir: Path = PROJECT_ROOT,
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run one dbt command in the project; raise UserFacingError when it fails.

    dbt runs in a process group of its own, its output passed through line by line, so a
    Ctrl-C reaches the harness alone: it hands dbt one SIGINT (dbt cancels its queries and
    ends by itself, its semaphores released: killed, it would leave them to the resource
    tracker's 'leaked semaphore' warning), leaves out dbt's stack trace and raises
    KeyboardInterrupt, which the command line turns into one line and exit 130.  A second
    Ctrl-C stops dbt at once."""
    profiles_dir = ensure_profiles(project_dir)
    command = [dbt_executable(), *args, "--project-dir", str(project_dir)]
    command += ["--profiles-dir", str(profiles_dir)]
    env = dbt_environment(settings, terminal=False if capture else None)
    if capture:
        completed = subprocess.run(
            command, cwd=project_dir, env=env, text=True, capture_output=True, check=False
        )
    else:
        completed = _run_passing_output_through(command, project_dir, env)
    if completed.returncode != 0:
        raise UserFacingError(
            f"'dbt {' '.join(args)}' failed (exit {completed.returncode}); its output above "
            f"and {project_dir / 'logs' / 'dbt.log'} say why."
        )
    return completed


def _run_passing_output_through(
    command: Sequence[str], project_dir: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    output = InterruptAwareOutput(sys.stdout)
    process = subprocess.Popen(
        command,
        cwd=project_dir,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        process_group=0,  # the terminal's Ctrl-C goes to the harness, which hands it on
    )
    assert process.stdout is not None
    try:
        with _terminations_forwarded_to(process):
            for line in process.stdout:
                output.write(line)
    except KeyboardInterrupt:
        output.interrupted = True
        process.send_signal(signal.SIGINT)
        _wait_for_interrupted(process, output)
        raise
    except BaseException:  # our output went away (a closed pipe): dbt must not block on it
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(list(command), process.wait())


@contextmanager
def _terminations_forwarded_to(process: subprocess.Popen[str]) -> Iterator[None]:
    """dbt has a process group of its own, so a SIGTERM or SIGHUP meant for the harness's
    group (a cancelled CI job, a closed terminal) would miss it and leave it running: while
    it runs, either signal is handed on to dbt, and once dbt has ended the harness ends by the
    same signal."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # no signal handlers there
        yield
        return
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        with suppress(ProcessLookupError):
            process.send_signal(signum)

    handed_on = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handed_on}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        process.wait()
        os.kill(os.getpid(), received[0])  # with the harness's own handler back in place


def _wait_for_interrupted(process: subprocess.Popen[str], output: InterruptAwareOutput) -> None:
    """dbt, handed a SIGINT, cancels its queries and ends; its last lines are shown."""
    assert process.stdout is not None
    try:
        for line in process.stdout:
            output.write(line)
        process.wait()
    except (KeyboardInterrupt, OSError):  # a second Ctrl-C, or our output went away
        process.kill()
        process.wait()


@contextmanager
def interrupt_aware_stdout() -> Iterator[InterruptAwareOutput]:
    """For dbt run in this process: its console output (dbt's logger writes to the sys.stdout
    of the moment it starts) through InterruptAwareOutput, which a Ctrl-C marks interrupted
    before dbt's handlers see the KeyboardInterrupt."""
    import threading
    from contextlib import redirect_stdout

    output = InterruptAwareOutput(sys.stdout)
    if threading.current_thread() is not threading.main_thread():  # no signal handlers there
        with redirect_stdout(output):  # type: ignore[type-var]
            yield output
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        output.interrupted = True
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        with redirect_stdout(output):  # type: ignore[type-var]
            yield output
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def process_environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """os.environ with ``overrides`` for the duration (dbt reads PG* through env_var)."""
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt_in_process(
    invocations: Sequence[Sequence[str]],
    settings: Mapping[str, str],
    *,
    project_dir: Path = PROJECT_ROOT,
    before_each: Callable[[int], AbstractContextManager[object]] | None = None,
    after_each: Callable[[int], None] | None = None,
) -> None:
    """Run several dbt commands in this process, importing dbt once (about 3-4 s saved per
    command after the first); ``before_each(i)`` wraps the i-th (e.g. in its run lock), and
    ``after_each(i)`` runs inside it once the i-th has succeeded.
    Raises UserFacingError at the first command that fails."""
    from dbt.cli.main import dbtRunner

    profiles_dir = ensure_profiles(project_dir)
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir)]
    with process_environment(dbt_environment(settings)), interrupt_aware_stdout() as output:
        for index, args in enumerate(invocations):
            with before_each(index) if before_each else nullcontext():
                result = dbtRunner().invoke([*args, *common])
                if output.interrupted:  # dbt caught the KeyboardInterrupt and reported failure
                    raise KeyboardInterrupt
                if not result.success:
                    raise UserFacingError(
                        f"'dbt {' '.join(args)}' failed: {failure_cause(result)}; its output "
                        f"above and {project_dir / 'logs' / 'dbt.log'} say why."
                    )
                if after_each is not None:
                    after_each(index)


def failure_cause(result: Any) -> str:
    """What a failed in-process dbt invocation (a dbtRunnerResult) said, in one line: its
    exception, else the first node or hook that failed and dbt's message for it."""
    if result.exception is not None:
        text = str(result.exception).strip()
        return text.splitlines()[0] if text else type(result.exception).__name__
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in {"error", "fail", "runtime error"}:
            node = getattr(node_result, "node", None)
            name = node.name if node is not None else getattr(node_result, "unique_id", "")
            message = " ".join(str(node_result.message or "").split())
            return f"{name}: {message}" if name else message
    return "dbt reported a failure without a message"
