"""``sprint59 sync`` as an operator runs it: a child process with the user's shell
(support/shell.py), its output read line by line as it comes, so a test can wait for a line,
signal it and read its exit code."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from support.databases import PROJECT_ROOT
from support.shell import user_environment

# A pass's line: UTC time, environment, what happened (validation/sync.py)
PASS_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEFAULT|TEST|UAT|PROD) "
    r"(nothing changed since run \d+|built run \d+ in \d+\.\d s(; .+)?"
    r"|failed: .+; retrying in \S+ s)$"
)


@dataclass
class SyncProcess:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pass_lines(self) -> list[str]:
        return [line for line in self.lines if PASS_LINE.match(line)]

    def wait_for_line(self, wanted: str | re.Pattern[str], *, after: int = 0) -> int:
        """The index of the first line from ``after`` on that contains ``wanted`` (a string)
        or matches it (a pattern); fails with the output when sync ended or 600 s passed."""
        found = self.wait_until(
            lambda: next(
                (
                    i
                    for i, line in enumerate(self.lines[after:], after)
                    if (wanted in line if isinstance(wanted, str) else wanted.search(line))
                ),
                None,
            ),
            f"a line with {wanted!r}",
        )
        assert isinstance(found, int)
        return found

    def wait_until(
        self, condition: Callable[[], object], what: str, timeout: float = 600
    ) -> object:
        """Poll ``condition`` until it is truthy (generous timeout: never a speed assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value is not None and value is not False:
                return value
            if self.process.poll() is not None:
                time.sleep(0.5)  # the rest of its output
                value = condition()
                if value is not None and value is not False:
                    return value
                raise AssertionError(
                    f"sync ended (exit {self.process.returncode}) before {what}:\n{self.output}"
                )
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout:.0f} s; sync said:\n{self.output}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 600) -> int:
        """Send ``signum``; its exit code once it ended (its output all read)."""
        self.process.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(timeout=30)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_sync(settings: Mapping[str, str], work: Path, *options: str) -> SyncProcess:
    """``python -m validation sync --target default --interval 1`` against the database of
    ``settings`` (dbt's unit tests left out, as the other harness tests do), its dbt target
    and logs under ``work``."""
    env = user_environment(settings, work) | {"PYTHONUNBUFFERED": "1", "DBT_SCHEMA": "public"}
    command = [
        sys.executable, "-m", "validation", "sync", "--target", "default", "--interval", "1",
        *options, "--exclude", "resource_type:unit_test",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    sync = SyncProcess(process)
    sync.reader = threading.Thread(target=sync._read, daemon=True)
    sync.reader.start()
    return sync
