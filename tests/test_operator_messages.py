"""What the operator reads: messages that point the right way (item 5), names that reach SQL
or the terminal quoted or escaped (item 7), no traceback where the README promises none
(item 8), and a freshness that a stamp from the future cannot fool (item 9)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from support.databases import PROJECT_ROOT, PgServer
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.shell import run_command, user_environment

from validation.cli import main
from validation.cli_parser import harness_command
from validation.query import Answer, render
from validation.validate import EXPECTATIONS_DIR
from validation.validate_report import ValidationReport, format_report

HARNESS = [sys.executable, "-m", "validation"]
CLEAR_SCREEN_THEME = "\x1b[2J\x1b[Hpwned"
FORMULA_THEME = '=HYPERLINK("http://evil.example","click")'


def build_once(project: DbtProject) -> None:
    """The compact cache of DEFAULT, with two theme keys a hostile loader could write (one
    that clears a terminal, one a spreadsheet would run) and two rows stamped in the future
    (one in 2099, one in year 20000), built once: the history starts at this build."""
    cache = small_cache(LegacyCache(project.connect()).create(), "DEFAULT")
    for key, symbol in ((CLEAR_SCREEN_THEME, "AAPL"), (FORMULA_THEME, "MSFT")):
        cache.add("theme_definition", key, "hostile", {"description": "x", "symbols": [symbol]})
    conn = project.connect()
    conn.execute("update cache_entries set created_at = '2099-01-01' where key = 'SPY'")
    conn.execute("update cache_entries set updated_at = '20000-01-01' where key = 'QQQ'")
    project.build()


@pytest.fixture
def operator_on_a_built_default(
    module_copy: psycopg.Connection,
    dbt_project: DbtProject,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> DbtProject:
    """A copy of the module's database; the command line's PG* settings point at it."""
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    return dbt_project


def _history_start(project: DbtProject) -> datetime:
    row = project.connect().execute("select min(valid_from) from definition_group_history")
    found = row.fetchone()
    assert found is not None and found[0] is not None
    return found[0]


def _ran(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- 5. messages that send people the right way ---------------------------------------------


def test_changes_since_before_the_history_began_answer_from_its_start_with_a_note(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    start = _history_start(operator_on_a_built_default)
    for since in ("2000-01-01", start.date().isoformat()):  # the first build's own day too
        code, out, err = _ran(capsys, ["query", "changes", "SPY", "--since", since])
        assert code == 0, err
        assert f"note: The history of DEFAULT starts at {start:%Y-%m-%d %H:%M:%S} UTC" in err
        assert f"changes from {start.isoformat(sep=' ')}" in out


def test_a_reversed_range_is_an_error_and_a_future_one_says_so(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).date()
    later = (today + timedelta(days=800)).isoformat()
    code, out, err = _ran(
        capsys, ["query", "changes", "SPY", "--since", today.isoformat(), "--until", "2000-01-01"]
    )
    assert (code, out) == (2, "")
    assert "the range is reversed" in err and "Traceback" not in err
    code, out, err = _ran(capsys, ["query", "changes", "SPY", "--since", later])
    assert (code, out) == (2, "")
    assert f"--since {later} is in the future" in err
    code, out, err = _ran(
        capsys, ["query", "changes", "SPY", "--since", "2000-01-01", "--until", later]
    )
    assert code == 0, err
    assert f"note: --until {later} is in the future: the changes are shown up to now." in err


def test_an_environment_the_database_does_not_hold_names_the_one_it_holds(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    for question in (["etf", "SPY"], ["etf", "SPY", "--as-of", "2026-01-01"]):
        code, _, err = _ran(capsys, ["query", *question, "--target", "prod"])
        assert code == 2
        assert "(it holds DEFAULT: add --target default)" in err, err


def test_a_wrong_database_is_named_with_what_to_check(
    operator_on_a_built_default: DbtProject,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PGDATABASE", "no_such_database_here")
    code, _, err = _ran(capsys, ["query", "etf", "SPY"])
    assert code == 2
    host = operator_on_a_built_default.settings["PGHOST"]
    assert f"{host}:" in err and "/no_such_database_here" in err
    assert "check PGDATABASE" in err and "embedded" not in err, err


def _prune_history(project: DbtProject, args: str, *, expect_success: bool = True) -> str:
    """What `dbt run-operation prune_history --args ARGS` said (its log and its errors)."""
    messages: list[str] = []
    project.invoke(
        "run-operation prune_history",
        args=("--args", args),
        expect_success=expect_success,
        callbacks=[lambda event: messages.append(str(event.info.msg))],
    )
    return "\n".join(messages)


def test_prune_history_says_where_the_history_really_starts(
    operator_on_a_built_default: DbtProject,
) -> None:
    start = _history_start(operator_on_a_built_default)
    said = _prune_history(operator_on_a_built_default, "{retention_days: 365}")
    assert f"DEFAULT's history starts at {start:%Y-%m-%d %H:%M:%S} UTC" in said, said
    assert "nothing was pruned" in said and "days before this run" not in said


def test_a_checkpoint_over_its_target_says_it_never_fails_the_result() -> None:
    import pandas as pd

    report = ValidationReport(
        target="default", environment="DEFAULT", expectations_path=Path("default.yml"),
        server="PostgreSQL", checks=(), timings=pd.DataFrame(), import_seconds=3.0,
        setup_seconds=0.4, timing_seconds=0.0, checkpoint_seconds=3.69,
        checkpoint_budget_seconds=2, docs_index=Path("index.html"), timings_mode="off",
    )  # fmt: skip
    line = next(x for x in format_report(report).splitlines() if "checkpoint run" in x)
    assert "checkpoint run: 3.69 s (target < 2 s, advisory: it never fails the result; OVER" in line
    assert "query timings above gate" in line


# --- 7. values that reach SQL or the terminal -----------------------------------------------


@dataclass(frozen=True)
class Company:
    """A database whose migration lives in schema "Mixed_Case", read by the role "BI"."""

    settings: dict[str, str]
    work: Path

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        settings = {**self.settings, "DBT_SCHEMA": "Mixed_Case", "DBT_LOG_PATH": str(self.work)}
        return run_command([*HARNESS, *argv], user_environment(settings, self.work))


@pytest.fixture(scope="module")
def a_company_with_schema_mixed_case_and_role_bi(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Company]:
    # roles are server-wide: made by an earlier session, or the other suite, is fine
    with (
        pg_server.connect(autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation),
    ):
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier("BI")))
    settings = pg_server.recreate_database(f"t_mixed_{uuid.uuid4().hex[:8]}")
    with pg_server.connect(settings["PGDATABASE"], autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "DEFAULT")
    company = Company(settings, tmp_path_factory.mktemp("mixed_case"))
    try:
        built = company.run("build", "--target", "default", "--vars", "{analyst_role: BI}")
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr
        yield company
    finally:
        pg_server.drop_database(settings["PGDATABASE"])


def test_a_mixed_case_schema_builds_validates_and_builds_again(
    a_company_with_schema_mixed_case_and_role_bi: Company, pg_server: PgServer
) -> None:
    company = a_company_with_schema_mixed_case_and_role_bi
    spec = yaml.safe_load((EXPECTATIONS_DIR / "test.yml").read_text(encoding="utf-8"))
    spec["environment"] = "DEFAULT"  # the compact cache's figures
    expectations = company.work / "default_compact.yml"
    expectations.write_text(yaml.safe_dump(spec), encoding="utf-8")
    validated = company.run("validate", "--timings", "off", "--expectations", str(expectations))
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr
    with pg_server.connect(company.settings["PGDATABASE"], autocommit=True) as conn:
        LegacyCache(conn).update(
            "etf_holdings", "SPY", {"holdings": ["AAPL", "MSFT", "NVDA", "XOM", "AMD"]}
        )
    rebuilt = company.run("build", "--target", "default", "--vars", "{analyst_role: BI}")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr
    asked = company.run("query", "etf", "SPY", "--format", "json")
    assert asked.returncode == 0, asked.stderr
    assert [r["symbol"] for r in json.loads(asked.stdout)][-1] == "AMD"
    with pg_server.connect(company.settings["PGDATABASE"]) as conn:
        found = conn.execute(
            "select count(*) from pg_namespace where nspname = 'mixed_case'"
        ).fetchone()
        defaults = conn.execute(
            "select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d"
            " join pg_class c on c.oid = d.adrelid join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'Mixed_Case' and c.relname = 'group_memberships'"
            " and d.adnum = 1"
        ).fetchone()
    assert found == (0,)
    assert defaults == ("""nextval('"Mixed_Case".group_memberships_id_seq'::regclass)""",)


def test_an_analyst_role_named_bi_reads_the_marts(
    a_company_with_schema_mixed_case_and_role_bi: Company, pg_server: PgServer
) -> None:
    database = a_company_with_schema_mixed_case_and_role_bi.settings["PGDATABASE"]
    with pg_server.connect(database) as conn:
        row = conn.execute(
            "select has_schema_privilege('BI', 'Mixed_Case', 'usage'),"
            " has_table_privilege('BI', '\"Mixed_Case\".definition_groups', 'select'),"
            " has_table_privilege('BI', '\"Mixed_Case\".symbol_memberships', 'select')"
        ).fetchone()
    assert row == (True, True, True)


def test_demo_refuses_a_database_name_dbt_cannot_quote_before_creating_it(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in pg_server.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PGDATABASE", "postgres")
    name = f'x"{uuid.uuid4().hex[:6]} z'
    try:
        code, out, err = _ran(capsys, ["demo", "--database", name])
        assert code == 2 and out == ""
        assert "holds a double quote" in err and "nothing was created" in err
        assert len(err.strip().splitlines()) == 1
        with pg_server.connect() as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,))
            assert exists.fetchone() is None
    finally:
        pg_server.drop_database(name)  # what the demo left behind before the fix


def test_a_theme_key_with_terminal_codes_is_shown_escaped_in_a_table(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _ran(capsys, ["query", "symbol", "AAPL"])
    assert code == 0, err
    assert "\x1b" not in out
    assert "\\x1b[2J\\x1b[Hpwned" in out


def test_a_formula_in_a_theme_key_reaches_csv_as_text_unless_raw(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    def themes_cell(*extra: str) -> str:
        code, out, err = _ran(capsys, ["query", "symbol", "MSFT", "--format", "csv", *extra])
        assert code == 0, err
        (row,) = csv.DictReader(io.StringIO(out, newline=""))
        return str(row["themes"])

    assert themes_cell().startswith("'" + FORMULA_THEME)
    assert themes_cell("--raw").startswith(FORMULA_THEME)


@pytest.mark.parametrize(
    ("cell", "written"),
    [("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("x\r=1+2", "x\r=1+2"), ("AAPL", "AAPL")],
)  # fmt: skip
def test_every_formula_start_owasp_names_is_guarded_in_csv_text_cells(
    cell: str, written: str
) -> None:
    answer = Answer("t", ["name", "weight"], [[cell, -0.5]])
    rows = list(csv.reader(io.StringIO(render(answer, "csv"), newline="")))
    assert rows == [["name", "weight"], [written, "-0.5"]]  # a negative number is no formula


# --- 8. no traceback ------------------------------------------------------------------------


def test_as_of_the_last_day_of_year_9999_answers_as_of_now(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _ran(capsys, ["query", "etf", "SPY", "--as-of", "9999-12-31"])
    assert code == 0, err
    assert "note: --as-of 9999-12-31 is in the future: answered as of now." in err
    assert out.startswith("ETF SPY in DEFAULT as of ")


def test_output_paths_are_refused_before_the_work(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _ran(capsys, ["validate", "--json", "/no/such/dir/x.json"])
    assert code == 2 and "checkpoint" not in out
    assert "--json /no/such/dir/x.json: its directory /no/such/dir does not exist" in err
    code, out, err = _ran(capsys, ["backup", "--target", "default", "--out", "/proc/x"])
    assert code == 2 and "snapshot" not in out
    assert "--out /proc/x: the directory cannot be created" in err


def test_the_printed_restore_command_is_shell_quoted(
    operator_on_a_built_default: DbtProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "backups of 'today'"
    code, out, err = _ran(capsys, ["backup", "--target", "default", "--out", str(out_dir)])
    assert code == 0, err
    command = next(line for line in out.splitlines() if line.startswith("restore:"))
    argv = shlex.split(command.removeprefix("restore:"))
    # the harness as it was started here (cli_parser.harness_command), then the command
    assert argv[:-1] == [*shlex.split(harness_command()), "restore"]
    assert Path(argv[-1]).parent == out_dir and Path(argv[-1]).is_file()


@pytest.mark.parametrize("text", ["{retention_days: nan}", "{retention_days: .inf}"])
def test_prune_history_refuses_a_retention_that_is_no_number_of_days(
    operator_on_a_built_default: DbtProject, text: str
) -> None:
    said = _prune_history(operator_on_a_built_default, text, expect_success=False)
    assert "retention_days must be a number of days above 0" in said, said
    assert "syntax error" not in said and "does not exist" not in said


@pytest.mark.parametrize("targets", ["default", "default,test"], ids=["child", "in-process"])
def test_ctrl_c_during_a_build_ends_in_one_line_and_exit_130(
    operator_on_a_built_default: DbtProject, targets: str
) -> None:
    """As a terminal does: SIGINT to the whole foreground process group, once dbt runs."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"}
    build = subprocess.Popen(
        [*HARNESS, "build", "--target", targets], cwd=PROJECT_ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert build.stdout is not None and build.stderr is not None
    seen = []
    for line in build.stdout:
        seen.append(line)
        if " START " in line:  # dbt is running hooks and models
            break
    os.killpg(build.pid, signal.SIGINT)
    out, err = build.communicate(timeout=120)
    output = "".join(seen) + out
    assert build.returncode == 130, output[-3000:] + err
    assert "Traceback" not in output + err and "leaked" not in err, output[-3000:] + err
    assert err.strip().splitlines() == [
        "interrupted: 'build' stopped before it finished; run it again to finish."
    ]


def test_a_harness_build_terminated_takes_its_dbt_with_it(
    operator_on_a_built_default: DbtProject, tmp_path: Path
) -> None:
    """dbt runs in a process group of its own (so Ctrl-C reaches the harness first): a SIGTERM
    to the harness alone (a cancelled CI job) must still end dbt."""
    target_path = str(tmp_path / "terminated")
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_TARGET_PATH": target_path}
    build = subprocess.Popen(
        [*HARNESS, "build", "--target", "default"], cwd=PROJECT_ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert build.stdout is not None
    for line in build.stdout:
        if " START " in line:
            break
    build.terminate()
    build.communicate(timeout=120)
    assert build.returncode == -signal.SIGTERM
    left = subprocess.run(["pgrep", "-f", target_path], capture_output=True, text=True)
    assert left.stdout == "", "dbt kept running after the harness ended"


# --- 9. freshness that a stamp from the future cannot fool ----------------------------------


def _freshness(project: DbtProject, *, expect_success: bool) -> str:
    result = project.invoke("source freshness", expect_success=expect_success)
    sources = [r for r in result.result.results if r.node.resource_type == "source"]
    assert len(sources) == 1
    return str(sources[0].status)


def test_a_row_stamped_in_the_future_cannot_make_a_stale_cache_fresh(
    dbt_project: DbtProject,
) -> None:
    conn = dbt_project.connect()
    small_cache(LegacyCache(conn).create(), "DEFAULT")
    conn.execute(
        "update cache_entries set created_at = now() - interval '30 days', updated_at = null"
    )
    one_row = "update cache_entries set created_at = %s where key = 'SPY'"
    conn.execute(one_row, ("2099-01-01",))
    assert _freshness(dbt_project, expect_success=False) == "error"  # 30 days old: stale
    conn.execute(one_row, ("20000-01-01",))
    assert _freshness(dbt_project, expect_success=False) == "error"  # not a runtime error
    conn.execute("update cache_entries set created_at = now() - interval '1 hour'")
    conn.execute("update cache_entries set updated_at = '20000-01-01' where key = 'QQQ'")
    assert _freshness(dbt_project, expect_success=True) == "pass"  # the other rows are fresh


def test_rows_stamped_in_the_future_are_reported_as_warnings(
    operator_on_a_built_default: DbtProject,
) -> None:
    rows = (
        operator_on_a_built_default.connect()
        .execute(
            "select entry_key, severity, detail from public_ops_default.migration_exceptions"
            " where reason = 'implausible_timestamp' order by entry_key"
        )
        .fetchall()
    )
    assert [(key, severity) for key, severity, _ in rows] == [
        ("QQQ", "warning"),
        ("SPY", "warning"),
    ]
    details = dict((key, detail) for key, _, detail in rows)
    assert details["SPY"].startswith("created_at 2099-01-01 00:00:00 UTC is after this run")
    assert details["QQQ"].startswith("updated_at 20000-01-01 00:00:00 UTC is after this run")
