"""Running dbt for this project: from the command line (a child process) with PG* settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from validation.connection import PROJECT_ROOT
from validation.errors import UserFacingError

TARGETS = ("default", "test", "uat", "prod")


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


def dbt_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The child environment for dbt: ours, the connection settings, and no telemetry."""
    env = dict(os.environ)
    env.update(settings)
    env["DO_NOT_TRACK"] = "1"
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def run_dbt(
    args: Sequence[str],
    settings: Mapping[str, str],
    *,
    project_dir: Path = PROJECT_ROOT,
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run one dbt command in the project; raise UserFacingError when it fails."""
    profiles_dir = ensure_profiles(project_dir)
    command = [dbt_executable(), *args, "--project-dir", str(project_dir)]
    command += ["--profiles-dir", str(profiles_dir)]
    completed = subprocess.run(
        command,
        cwd=project_dir,
        env=dbt_environment(settings),
        text=True,
        capture_output=capture,
        check=False,
    )
    if completed.returncode != 0:
        raise UserFacingError(
            f"'dbt {' '.join(args)}' failed (exit {completed.returncode}); its output above "
            f"and {project_dir / 'logs' / 'dbt.log'} say why."
        )
    return completed
