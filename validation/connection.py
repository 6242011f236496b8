"""Connection settings: the standard libpq PG* variables, or the project's embedded server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import psycopg

from validation.command import harness_command
from validation.errors import UserFacingError

PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def external_server_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when PGHOST, PGPORT or PGDATABASE point libpq at a server of the caller's."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in ("PGHOST", "PGPORT", "PGDATABASE"))


def connect(settings: Mapping[str, str] | None = None, **kwargs: object) -> psycopg.Connection:
    """Open a psycopg connection from PG* settings (the process environment when none are given)."""
    params: dict[str, object] = {}
    if settings is not None:
        mapping = {
            "PGHOST": "host",
            "PGPORT": "port",
            "PGUSER": "user",
            "PGPASSWORD": "password",
            "PGDATABASE": "dbname",
        }
        params = {mapping[k]: v for k, v in settings.items() if k in mapping and v}
    params.update(kwargs)
    try:
        return psycopg.connect(**params)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise UserFacingError(connection_failure(exc, settings)) from exc


def connection_failure(exc: psycopg.OperationalError, settings: Mapping[str, str] | None) -> str:
    """One sentence: where the connection went, what the server (or libpq) said, and which
    setting to check for that kind of failure."""
    text = str(exc).strip()
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  <why>'
    reason = text.splitlines()[0].rsplit(" failed: ", 1)[-1] if text else type(exc).__name__
    reason = reason.removeprefix("FATAL:").strip()
    if "does not exist" in reason and "database" in reason:
        advice = "check PGDATABASE ('psql -l' lists the databases that server has)"
    elif "role" in reason or "authentication" in reason or "password" in reason:
        advice = "check PGUSER, and PGPASSWORD or ~/.pgpass"
    elif external_server_configured():  # the caller's PG* settings, not the embedded server
        advice = (
            "check that a PostgreSQL server runs there and that PGHOST and PGPORT name it "
            "(unset them to use the embedded server)"
        )
    else:
        advice = (
            f"start the embedded server with '{harness_command()} db start', or set "
            "PGHOST/PGPORT/PGUSER/PGDATABASE to use your own"
        )
    return f"Cannot connect to PostgreSQL at {describe(settings)} ({reason}); {advice}."


def describe(settings: Mapping[str, str] | None = None) -> str:
    """A short, password-free description of where a connection goes."""
    env = os.environ if settings is None else settings
    host = env.get("PGHOST") or "the default socket"
    port = env.get("PGPORT") or "5432"
    db = env.get("PGDATABASE") or env.get("PGUSER") or "postgres"
    return f"{host}:{port}/{db}"
