"""A user's shell, for the tests that run the harness, dbt or a README line as a child process:
what the user has set and nothing of this test process's own database settings; and the
blocks of the README those tests run as written."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from support.databases import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def user_environment(settings: Mapping[str, str], work: Path) -> dict[str, str]:
    """This process's environment without any PG* or DBT_* variable (the test's own must not
    leak into the user's shell), then the user's ``settings``; dbt's tracking off, its target
    and logs under ``work`` unless ``settings`` name them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBT_"))}
    env |= {
        "DO_NOT_TRACK": "1",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
    }
    return env | dict(settings)


def run_command(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path = PROJECT_ROOT,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``command`` in that environment, from ``cwd``, with no terminal on stdin."""
    return subprocess.run(
        list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip


def readme_block(marker: str, language: str = "sql", document: Path = README) -> str:
    """The code block of ``document`` (the README unless named) that follows
    ``<!-- marker -->``, as a user copies it."""
    pattern = re.compile(rf"<!-- {re.escape(marker)} -->\s*```{language}\n(.*?)```", re.DOTALL)
    found = pattern.search(document.read_text(encoding="utf-8"))
    assert found, f"{document.name} has no <!-- {marker} --> block"
    return found[1]
