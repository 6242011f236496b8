"""What CI gets: JUnit XML from `make test`, its exit status, and dbt output without colour
codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.databases import PROJECT_ROOT

from validation.dbt import dbt_environment, run_dbt

ESCAPE = "\x1b["

# Stands in for pytest: writes the JUnit file it is asked for, fails for the suite FAILING names.
FAKE_PYTEST = """\
import os, sys
suite = sys.argv[sys.argv.index("--pg") + 1]
junit = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--junitxml="))
failed = os.environ.get("FAILING") == suite
with open(junit, "w") as f:
    f.write('<testsuites><testsuite name="%s" tests="1" failures="%d"/></testsuites>'
            % (suite, failed))
print(suite, "failed" if failed else "passed")
sys.exit(1 if failed else 0)
"""


# Stands in for `make lint`: fails when FAILING names it.
FAKE_GATES = """\
import os, sys
print("gates", "failed" if os.environ.get("FAILING") == "lint" else "passed")
sys.exit(1 if os.environ.get("FAILING") == "lint" else 0)
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{text}")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("failing", ["", "embedded", "service", "lint"])
def test_make_test_writes_junit_per_server_and_fails_when_any_part_fails(
    tmp_path: Path, failing: str
):
    """Either suite failing, or the quality gates that run beside them, fails `make test`."""
    fake = _script(tmp_path / "pytest", FAKE_PYTEST)
    gates = _script(tmp_path / "lint", FAKE_GATES)
    reports = tmp_path / "reports"

    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "test-suites",
            f"PYTEST={fake}",
            f"GATES={gates}",
            f"REPORTS={reports}",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "FAILING": failing},
        capture_output=True,
        text=True,
        check=False,
    )

    assert (done.returncode == 0) == (not failing), done.stdout + done.stderr
    assert "[pg18] embedded" in done.stdout and "[pg15] service" in done.stdout
    assert "[lint] gates" in done.stdout
    assert f"quality gates exit {int(failing == 'lint')}" in done.stdout
    for suite, name in (("embedded", "junit-pg18.xml"), ("service", "junit-pg15.xml")):
        report = (reports / name).read_text()
        assert f'name="{suite}"' in report
        assert f'failures="{int(suite == failing)}"' in report


def test_dbt_colours_follow_the_terminal(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DBT_USE_COLORS", raising=False)
    monkeypatch.delenv("DBT_USE_COLORS_FILE", raising=False)
    piped = dbt_environment({}, terminal=False)
    assert (piped["DBT_USE_COLORS"], piped["DBT_USE_COLORS_FILE"]) == ("false", "false")
    assert "DBT_USE_COLORS" not in dbt_environment({}, terminal=True)
    monkeypatch.setenv("DBT_USE_COLORS", "true")  # the operator's explicit choice wins
    assert dbt_environment({}, terminal=False)["DBT_USE_COLORS"] == "true"


@pytest.mark.parametrize("forced", [None, "true"])
def test_dbt_run_by_the_harness_writes_no_colour_codes_into_captured_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forced: str | None
):
    """dbt parse, captured (not a terminal): no escape codes on stdout or in dbt.log; forcing
    colours back on shows the check would see them."""
    for name in ("DBT_USE_COLORS", "DBT_USE_COLORS_FILE"):
        monkeypatch.delenv(name, raising=False)
    if forced:
        monkeypatch.setenv("DBT_USE_COLORS", forced)
        monkeypatch.setenv("DBT_USE_COLORS_FILE", forced)
    settings = {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path)}

    done = run_dbt(["parse"], settings, capture=True)

    log = (tmp_path / "dbt.log").read_text()
    assert "Running with dbt=" in done.stdout
    assert (ESCAPE in done.stdout, ESCAPE in log) == (bool(forced), bool(forced))
