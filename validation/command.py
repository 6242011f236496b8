"""How a user types this command line: the one place that spells it, so that every command
the harness prints (in a hint, an error, the demo) works as printed."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

SCRIPT = "sprint59"  # the console script (pyproject.toml [project.scripts])


def harness_command() -> str:
    """This command line as a user types it, so that a command the harness prints works as
    printed, in the directory it was printed in: ``sprint59`` when that is the installed
    script on PATH (the venv is active); else the installed script by its path, relative when
    it is below the current directory (``.venv/bin/sprint59``); else this Python's
    ``-m validation`` (a venv made before the project was installed into it)."""
    script = Path(sys.executable).parent / SCRIPT
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m validation"
    on_path = shutil.which(SCRIPT)
    if on_path and os.path.samefile(on_path, script):
        return SCRIPT
    try:
        shown = str(script.relative_to(Path.cwd()))
    except ValueError:
        shown = str(script)
    return shlex.quote(shown)
