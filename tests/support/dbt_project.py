"""dbt invoked in-process against one test database, with parsed manifests reused per target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from support.databases import PROJECT_ROOT, connect
from validation.dbt import process_environment

SELECTING = frozenset({"--select", "-s", "--exclude", "--selector", "--resource-type"})


class DbtRunFailed(AssertionError):
    """dbt reported failure; the message carries what dbt said."""


@dataclass
class DbtProject:
    """Runs this dbt project in-process against one database, reusing parsed manifests."""

    settings: Mapping[str, str]
    work_dir: Path
    manifests: dict[str, Any] = field(default_factory=dict)
    # dbt formats every event as a log line (secrets scrubbed) before its level is checked,
    # on the console even with --quiet and in dbt.log: about a tenth of a small build.  The
    # tests read what dbt did from its results, so both are off unless a test reads dbt.log.
    writes_log: bool = False

    def connect(self) -> psycopg.Connection:
        """An autocommit connection to this project's database."""
        return connect(self.settings)

    def _env(self) -> dict[str, str]:
        return {**self.settings, "DO_NOT_TRACK": "1", "DBT_SCHEMA": "public"}

    def _common(self, target: str) -> list[str]:
        return [
            "--project-dir", str(PROJECT_ROOT),
            "--profiles-dir", str(self.work_dir),
            "--target", target,
            "--target-path", str(self.work_dir / f"target-{target}"),
            "--log-path", str(self.work_dir / "logs"),
            "--quiet",
            "--log-level", "none",
            "--log-level-file", "debug" if self.writes_log else "none",
        ]  # fmt: skip

    def _manifest(self, target: str) -> Any:
        from dbt.cli.main import dbtRunner

        key = f"{self.settings['PGDATABASE']}/{target}"
        if key not in self.manifests:
            with process_environment(self._env()):
                result = dbtRunner().invoke(["parse", *self._common(target)])
            if not result.success:
                raise DbtRunFailed(f"dbt parse failed: {result.exception}")
            self.manifests[key] = result.result
            # The target path is shared by every database, and the next parse (of another
            # database, or with --vars) overwrites its partial-parse file: keep this one.
            kept = self._parsed_state_file(target)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.work_dir / f"target-{target}" / kept.name, kept)
        return self.manifests[key]

    def manifest(self, target: str = "default") -> Any:
        """dbt's parsed manifest of this project for ``target`` (parsed once)."""
        return self._manifest(target)

    def _parsed_state_file(self, target: str) -> Path:
        database = self.settings["PGDATABASE"]
        return self.work_dir / "parsed" / f"{database}-{target}" / "partial_parse.msgpack"

    def parsed_state(self, target: str = "default") -> Path:
        """dbt's partial-parse file for this database and target (parsed once if needed).  A
        child dbt process whose target path holds a copy skips the full parse (about half of
        its start-up CPU): dbt's state check accepts the file when the project, the profile's
        connection (host, port, user, database, schema) and the command-line variables are
        those of the parse."""
        self._manifest(target)
        return self._parsed_state_file(target)

    def seed_parsed_state(self, target_path: Path, target: str = "default") -> None:
        """Put parsed_state(target) in ``target_path``, the target directory of a child dbt
        run against this database (the harness's runs use ``$DBT_TARGET_PATH/<target>``)."""
        state = self.parsed_state(target)
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, target_path / state.name)

    def invoke(
        self,
        command: str,
        *,
        target: str = "default",
        variables: Mapping[str, Any] | None = None,
        args: tuple[str, ...] = (),
        expect_success: bool = True,
        callbacks: list[Callable[[Any], None]] | None = None,
    ) -> Any:
        """``callbacks`` receive each of dbt's events as it fires, in the thread that fires it
        (e.g. NodeStart, before a node's first statement)."""
        from dbt.cli.main import dbtRunner

        argv = [*command.split(), *self._common(target), *args]
        if variables:
            argv += ["--vars", json.dumps(dict(variables))]
        manifest = None if variables else self._manifest(target)
        with process_environment(self._env()):
            result = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(argv)
        if expect_success and not result.success:
            raise DbtRunFailed(_failure_text(result))
        if not expect_success and result.success:
            raise DbtRunFailed(f"dbt {command} succeeded but was expected to fail")
        return result

    def build(
        self,
        target: str = "default",
        *,
        args: tuple[str, ...] = (),
        unit_tests: bool = False,
        generic_tests: bool = False,
        artifacts: bool = False,
        **kwargs: Any,
    ) -> Any:
        """`dbt build`, with the singular data tests (the reconciliation identity, the
        empty-environment check) -- unless ``args`` selects nodes itself.

        Unit tests mock every input, so their outcome depends on the SQL alone: they run in
        the session's sample build (conftest.built_sample, ``unit_tests=True``) and nowhere
        else.  The generic column tests (not_null, unique, relationships, accepted_values,
        the history's period tests: about 100 nodes, half of a small build's time) run where
        their data is the point, ``generic_tests=True``: the sample build, every
        incremental run compared with a fresh build, the upgraded database (the scripted
        history runs select the history's own tests); the other tests assert what they
        prove on the rows themselves.

        dbt's artifacts (manifest.json, run_results.json) are written only with
        ``artifacts=True``, for tests that read them (the sample build, builds that
        `validate` reads): writing them is about a sixth of a small build's CPU, and the
        tests read what dbt did from the result it returns."""
        if not artifacts:
            args = (*args, "--no-write-json")
        if not SELECTING.intersection(args):
            excluded = [] if unit_tests else ["resource_type:unit_test"]
            if not (generic_tests or unit_tests):
                excluded.append("test_type:generic")
            if excluded:
                args = ("--exclude", *excluded, *args)
        return self.invoke("build", target=target, args=args, **kwargs)


def _failure_text(result: Any) -> str:
    if result.exception is not None:
        return f"dbt failed: {result.exception}"
    messages = []
    for node_result in getattr(result.result, "results", []) or []:
        if str(node_result.status) in {"error", "fail"}:
            # a run-operation's result has no node
            node = getattr(node_result, "node", None)
            name = node.unique_id if node is not None else getattr(node_result, "unique_id", "")
            messages.append(f"{name}: {node_result.message}")
    return "dbt failed:\n" + "\n".join(messages)


def failure_messages(result: Any) -> str:
    """Everything dbt said about failed nodes (for asserting on error messages)."""
    return _failure_text(result)


@dataclass(frozen=True)
class BuiltSample:
    """A database holding the DEFAULT sample cache and the tables one build made of it."""

    project: DbtProject
    build_seconds: float
    unit_test_statuses: Mapping[str, str]

    @property
    def settings(self) -> Mapping[str, str]:
        return self.project.settings

    def connect(self) -> psycopg.Connection:
        return self.project.connect()
