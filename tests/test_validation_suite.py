"""The Great Expectations suite (validation/validate.py) against a real PostgreSQL after dbt build:
it passes on good data and fails, readably, on deliberately broken data."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache

from validation.errors import UserFacingError
from validation.validate import (
    CACHE_SOURCE,
    EXPECTATIONS_DIR,
    MANIFEST_NODES,
    SUITE_QUERIES,
    ValidationReport,
    connection_url,
    format_report,
    run_validation,
)

SECRET = "never-printed-0xC0FFEE"  # a dummy password: the test servers use trust auth


def _validate(
    project: DbtProject,
    docs_dir: Path,
    *,
    target: str = "test",
    expectations: Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> ValidationReport:
    return run_validation(
        settings or project.settings,
        target,
        manifest_path=project.work_dir / f"target-{target}" / "manifest.json",
        docs_dir=docs_dir,
        expectations_path=expectations,
    )


def _failed(report: ValidationReport) -> set[str]:
    return {c.check for c in report.failures}


def build_once(project: DbtProject) -> None:
    with project.connect() as conn:
        small_cache(LegacyCache(conn).create(), "TEST")
        project.build("test", artifacts=True)


@pytest.fixture
def small_test_build(module_copy: psycopg.Connection) -> psycopg.Connection:
    """The TEST environment migrated from the compact cache with every legacy shape
    (build_once)."""
    return module_copy


# --- on good data ---------------------------------------------------------------------------


def test_small_fixture_meets_every_expectation_and_writes_data_docs(
    dbt_project: DbtProject,
    small_test_build: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    docs = tmp_path / "data_docs"
    report = _validate(dbt_project, docs, settings={**dbt_project.settings, "PGPASSWORD": SECRET})

    text = format_report(report)
    assert report.success, text
    assert len(report.checks) == 25
    assert report.check("etf_groups").observed == "3"
    assert report.check("legacy_parity").observed == "0"
    assert "Result: PASS (25 of 25 expectations met)" in text
    assert "import great_expectations" in text and "checkpoint run" in text
    # Data Docs: a local HTML site whose index lists the four suites and their (passing) results.
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert report.docs_index == docs / "index.html"
    for suite in ("counts", "definition_groups", "group_memberships", "query_timings"):
        assert f"sprint59_test.{suite}" in index
        assert list((docs / "validations" / "sprint59_test" / suite).rglob("*.html"))
    assert "Success" in index and "Failed" not in index
    # The password reaches the driver only: never the report, the output or the Data Docs.
    assert SECRET not in text + "".join(capsys.readouterr())
    assert not [
        p for p in docs.rglob("*") if p.is_file() and SECRET in p.read_text("utf-8", "ignore")
    ]


def test_data_docs_keep_every_validation_of_the_target(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    """Two validations into one Data Docs site: the index lists both runs, each named by
    target, time and the dbt build it checked; the second failed and says so."""
    docs = tmp_path / "data_docs"
    first = _validate(dbt_project, docs)
    small_test_build.execute("delete from public.definition_groups where name = 'XLE'")
    second = _validate(dbt_project, docs)

    assert first.success and not second.success
    index = (docs / "index.html").read_text(encoding="utf-8")
    names = set(
        re.findall(r"test \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, build: dbt invocation \w{8}", index)
    )
    assert len(names) == 2, names
    assert "Success" in index and "Failed" in index


def test_sample_meets_the_spec_figures(dbt_project: DbtProject, tmp_path: Path):
    """DEFAULT on the realistic sample: 24 / 20 / 11, ~3,700 symbols, budgets (default.yml)."""
    from validation.sample import load_sample

    with dbt_project.connect() as conn:
        load_sample(conn, environments=("DEFAULT",))
    dbt_project.build("default", artifacts=True)

    report = _validate(dbt_project, tmp_path / "docs", target="default")

    text = format_report(report)
    print(text)  # the figures (pytest -s): timings, import time, checkpoint time
    assert report.success, text
    assert report.expectations_path == EXPECTATIONS_DIR / "default.yml"
    assert [report.check(k).observed for k in ("etf_groups", "theme_groups", "sector_groups")] == [
        "24",
        "20",
        "11",
    ]


def test_other_writers_rows_are_reported_and_never_fail_the_counts_or_the_parity(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    conn = small_test_build
    conn.execute(
        "insert into public.definition_groups (name, type, environment, metadata)"
        " values ('HANDMADE', 'ETF', 'TEST', '{\"source\": {\"type\": \"etf_holdings\","
        ' "key": "HANDMADE"}}\')'
    )
    conn.execute(
        "insert into public.group_memberships (group_id, symbol) select id, s"
        " from public.definition_groups, unnest(array['AAPL', 'LEGX']) as s"
        " where environment = 'TEST' and name in ('HANDMADE', 'SPY')"
        " and (name, s) <> ('SPY', 'AAPL')"
    )

    report = _validate(dbt_project, tmp_path / "docs")

    text = format_report(report)
    assert report.data_success, text
    assert report.check("etf_groups").observed == "3"
    assert report.check("legacy_parity").observed == "0"
    assert report.other_writers is not None
    assert (report.other_writers.groups, report.other_writers.memberships) == (1, 3)
    assert "Other writers: 1 groups and 3 memberships" in text
    assert "member LEGX of ETF SPY" in text


def test_the_parity_reads_types_and_environments_as_the_models_do(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    # XLE's row respelled in place: the models read it as before (etf_holdings, TEST), so
    # validate's parity must too, and find nothing missing
    small_test_build.execute(
        "update cache_entries set type = 'ETF_HOLDINGS', environment = E' test\\t'"
        " where type = 'etf_holdings' and key = 'XLE' and environment = 'TEST'"
    )
    dbt_project.build("test", artifacts=True)

    report = _validate(dbt_project, tmp_path / "docs")

    assert report.check("etf_groups").observed == "3"
    assert report.check("legacy_parity").observed == "0", report.check("legacy_parity").message


# --- on broken data -------------------------------------------------------------------------


def test_an_orphan_membership_fails_the_orphan_expectation(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    conn = small_test_build
    conn.execute(
        "alter table public.group_memberships drop constraint group_memberships_group_id_fkey"
    )
    conn.execute("insert into public.group_memberships (group_id, symbol) values (987654, 'ORPH')")

    report = _validate(dbt_project, tmp_path / "docs")

    assert not report.success
    assert _failed(report) == {"orphan_memberships"}
    message = report.check("orphan_memberships").message
    assert message.startswith("orphan memberships: observed 1, expected none")
    assert "group_id=987654, symbol=ORPH" in message
    assert message in format_report(report)
    assert "Failed" in (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")


def test_a_missing_etf_fails_the_counts_and_the_parity(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    small_test_build.execute(
        "delete from public.definition_groups where name = 'XLE' and type = 'ETF'"
    )  # its memberships go with it (ON DELETE CASCADE)

    report = _validate(dbt_project, tmp_path / "docs")

    # the analyst tables, derived from the two, still show XLE: stale
    assert _failed(report) == {
        "etf_groups",
        "etf_theme_memberships",
        "legacy_parity",
        "symbol_memberships_match",
        "group_summary_match",
        "etf_overlap_match",
        "group_holdings_match",
    }
    assert report.check("etf_groups").message == "ETF groups: observed 2, expected exactly 3"
    parity = report.check("legacy_parity").message
    assert "observed 2, expected 0 mismatches" in parity
    for symbol in ("CVX", "XOM"):
        assert (
            f"group_type=ETF, group_name=XLE, symbol={symbol}, "
            "mismatch=in the legacy list, not in group_memberships"
        ) in parity


ANALYST_TABLE_DAMAGE = {
    "symbol_memberships emptied": ("symbol_memberships_match", "delete from {table}"),
    "symbol_memberships stale": (
        "symbol_memberships_match",
        "update {table} set etfs = array['XLE']::varchar[] where symbol = 'AAPL'",
    ),
    "group_summary partial": ("group_summary_match", "delete from {table} where name = 'SPY'"),
    "group_summary stale": (
        "group_summary_match",
        "update {table} set member_count = member_count + 1 where name = 'QQQ'",
    ),
    "etf_overlap emptied": ("etf_overlap_match", "delete from {table}"),
    "etf_overlap with a pair too many": (
        "etf_overlap_match",
        "insert into {table} select environment, etf, 'NOSUCH', shared_symbols, etf_holdings,"
        " other_etf_holdings, share_of_etf, share_of_other_etf, weighted_shared_symbols,"
        " weighted_overlap from {table} limit 1",
    ),
    "group_holdings emptied": ("group_holdings_match", "delete from {table}"),
    "group_holdings out of order": (
        "group_holdings_match",
        "update {table} set symbols = array(select unnest(symbols) order by 1 desc)"
        " where name = 'SPY'",
    ),
    "group_holdings with a weight changed": (
        "group_holdings_match",
        "update {table} set weights[1] = weights[1] / 2 where name = 'QQQ'",
    ),
}


@pytest.mark.parametrize("damage", sorted(ANALYST_TABLE_DAMAGE))
def test_an_empty_stale_or_partial_analyst_table_fails_its_expectation(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path, damage: str
):
    check, statement = ANALYST_TABLE_DAMAGE[damage]
    table = check.removesuffix("_match")
    small_test_build.execute(sql.SQL(statement).format(table=sql.Identifier("public", table)))

    report = _validate(dbt_project, tmp_path / "docs")

    assert _failed(report) == {check}, damage
    assert report.check(check).message.startswith(f"{table}: its rows = the two tables' rows")


def test_a_query_slowed_by_a_dropped_index_fails_its_budget(
    dbt_project: DbtProject, small_test_build: psycopg.Connection, tmp_path: Path
):
    """Without any index leading on group_id, the spec's 'ETF holdings' join must scan 200,000
    memberships (the packed row does not read them): no machine does that in 1 ms (the
    indexed plan takes ~0.05 ms). Only the failing direction is asserted, so a busy machine
    cannot make this test fail."""
    conn = small_test_build
    conn.execute("alter table public.group_memberships drop constraint unique_membership")
    for (index,) in conn.execute(
        "select indexname from pg_indexes where schemaname = 'public'"
        " and tablename = 'group_memberships' and indexdef like '%(symbol, group_id)%'"
    ).fetchall():
        conn.execute(sql.SQL("drop index public.{}").format(sql.Identifier(index)))
    # Filler in another environment, so every TEST figure stays the same.
    conn.execute(
        "insert into public.definition_groups (name, type, environment)"
        " select 'filler_' || g, 'CUSTOM', 'PROD' from generate_series(1, 200) g"
    )
    conn.execute(
        "insert into public.group_memberships (group_id, symbol)"
        " select g.id, 'F' || s from public.definition_groups g"
        " cross join generate_series(1, 1000) s where g.name like 'filler_%'"
    )
    conn.execute("analyze public.group_memberships")
    spec = yaml.safe_load((EXPECTATIONS_DIR / "test.yml").read_text(encoding="utf-8"))
    spec["timings"]["budgets_p95_ms"]["etf_holdings_spec_join"] = 1
    spec["timings"]["analyst"] = {"warmup": 2, "runs": 10}
    expectations = tmp_path / "slow_query.yml"
    expectations.write_text(yaml.safe_dump(spec), encoding="utf-8")

    report = _validate(dbt_project, tmp_path / "docs", expectations=expectations)

    assert "p95_etf_holdings_spec_join" in _failed(report)
    assert not {"etf_groups", "legacy_parity", "orphan_memberships"} & _failed(report)
    message = report.check("p95_etf_holdings_spec_join").message
    assert message.startswith("p95 ETF holdings, the spec's join: observed ")
    assert message.endswith(" ms, expected ≤ 1 ms")


# --- when it cannot run ---------------------------------------------------------------------


def _manifest(path: Path, database: str, *, exceptions_schema: str = "public_ops_test"):
    def entry(name: str, schema: str) -> dict[str, Any]:
        return {"database": database, "schema": schema, "name": name, "alias": name}

    nodes = {
        MANIFEST_NODES["groups"]: entry("definition_groups", "public"),
        MANIFEST_NODES["memberships"]: entry("group_memberships", "public"),
        MANIFEST_NODES["exceptions"]: entry("migration_exceptions", exceptions_schema),
    }
    sources = {CACHE_SOURCE: {**entry("cache_entries", "public"), "identifier": "cache_entries"}}
    path.write_text(json.dumps({"nodes": nodes, "sources": sources}), encoding="utf-8")
    return path


def test_missing_manifest_tells_to_build_first(tmp_path: Path):
    with pytest.raises(UserFacingError, match=r"run dbt build --target test first\.$"):
        run_validation(
            {}, "test", manifest_path=tmp_path / "manifest.json", docs_dir=tmp_path / "docs"
        )


def test_unknown_target_names_the_known_ones(tmp_path: Path):
    with pytest.raises(UserFacingError, match="Unknown target 'qa': use one of default, test"):
        run_validation({}, "qa", manifest_path=tmp_path / "m.json", docs_dir=tmp_path / "docs")


def test_a_manifest_of_another_target_is_refused(tmp_path: Path):
    manifest = _manifest(tmp_path / "m.json", "db", exceptions_schema="public_ops_prod")
    with pytest.raises(
        UserFacingError,
        match="build of the PROD environment, not TEST; run dbt build --target test first",
    ):
        run_validation({}, "test", manifest_path=manifest, docs_dir=tmp_path / "docs")


def test_missing_tables_tell_to_build_first(fresh_database: dict[str, str], tmp_path: Path):
    with psycopg.connect(**_libpq(fresh_database), autocommit=True) as conn:
        LegacyCache(conn).create()
    manifest = _manifest(tmp_path / "m.json", fresh_database["PGDATABASE"])
    with pytest.raises(
        UserFacingError, match=r"public\.definition_groups .* run dbt build --target test first"
    ):
        run_validation(fresh_database, "test", manifest_path=manifest, docs_dir=tmp_path / "d")


def _libpq(settings: Mapping[str, str]) -> dict[str, str]:
    names = {"PGHOST": "host", "PGPORT": "port", "PGUSER": "user", "PGDATABASE": "dbname"}
    return {names[k]: v for k, v in settings.items() if k in names}


# --- pieces ---------------------------------------------------------------------------------


def test_connection_url_takes_socket_directories_and_quotes_the_password():
    url = connection_url(
        {"PGHOST": "/work/main/.pgdata/demo", "PGPORT": "5433", "PGUSER": "postgres",
         "PGPASSWORD": "p@ss/word", "PGDATABASE": "sprint59"}
    )  # fmt: skip
    assert url == (
        "postgresql+psycopg://postgres:p%40ss%2Fword@/sprint59"
        "?host=%2Fwork%2Fmain%2F.pgdata%2Fdemo&port=5433"
    )


def test_batch_aliasing_matches_what_great_expectations_does():
    """GX aliases {batch} itself unless the query contains JOIN; then the query must."""
    for query in SUITE_QUERIES:
        if query.batch is None:
            continue
        has_join = " join " in query.template.lower()
        assert ("{batch} as " in query.template) == has_join, query.name


def test_a_second_validation_writing_the_same_data_docs_waits_for_the_first(tmp_path: Path):
    """Two validations of one target from one checkout (two CI jobs, or the two suites of
    `make test`) would rewrite the same GX file context at once; the second waits for the
    first's lock on the directory, and says so."""
    from validation.validate import docs_dir_lock

    said: list[str] = []
    entered = threading.Event()

    def second_validation() -> None:
        with docs_dir_lock(tmp_path, said.append):
            entered.set()

    waiter = threading.Thread(target=second_validation)
    with docs_dir_lock(tmp_path, said.append):
        waiter.start()
        deadline = time.monotonic() + 60
        while not said and time.monotonic() < deadline:
            time.sleep(0.01)
        assert said == [f"waiting for another validation writing {tmp_path} to finish"]
        assert not entered.is_set()
    waiter.join(60)
    assert entered.is_set()
