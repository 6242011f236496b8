"""`dbt source freshness` on the sample: a fresh load passes; a source whose newest write is
older than the configured limit is an error (vars freshness_warn_after_hours /
freshness_error_after_hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.dbt_project import DbtProject

from validation.sample import load_sample

# the harness's own behaviour, the same on every server: the PostgreSQL 15 suite runs it
pytestmark = pytest.mark.one_server


def _status(project: DbtProject, **kwargs: object) -> str:
    result = project.invoke("source freshness", **kwargs)  # type: ignore[arg-type]
    sources = [r for r in result.result.results if r.node.resource_type == "source"]
    assert len(sources) == 1
    return str(sources[0].status)


def test_a_freshly_loaded_sample_is_fresh_and_an_old_one_is_an_error(dbt_project: DbtProject):
    conn = dbt_project.connect()
    load_sample(conn, environments=("DEFAULT",))
    assert _status(dbt_project) == "pass"

    # the same sample, last written 10 hours ago: fresh under the default limits (36 h warn,
    # 168 h error), an error once the limits say 2 h / 5 h
    load_sample(
        conn, environments=("DEFAULT",), replace=True, as_of=datetime.now(UTC) - timedelta(hours=10)
    )
    assert _status(dbt_project) == "pass"
    limits = {"freshness_warn_after_hours": 2, "freshness_error_after_hours": 5}
    assert _status(dbt_project, variables=limits, expect_success=False) == "error"
    limits = {"freshness_warn_after_hours": 2, "freshness_error_after_hours": 50}
    assert _status(dbt_project, variables=limits) == "warn"

    # eight days old: past the default error limit
    load_sample(
        conn, environments=("DEFAULT",), replace=True, as_of=datetime.now(UTC) - timedelta(days=8)
    )
    assert _status(dbt_project, expect_success=False) == "error"
