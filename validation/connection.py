"""Connection settings: the standard libpq PG* variables, or the project's embedded server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import psycopg

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
        where = describe(settings)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserFacingError(
            f"Cannot connect to PostgreSQL at {where} ({first_line}); start the embedded server "
            "with 'python -m validation db start' or set PGHOST/PGPORT/PGUSER/PGDATABASE."
        ) from exc


def describe(settings: Mapping[str, str] | None = None) -> str:
    """A short, password-free description of where a connection goes."""
    env = os.environ if settings is None else settings
    host = env.get("PGHOST") or "the default socket"
    port = env.get("PGPORT") or "5432"
    db = env.get("PGDATABASE") or env.get("PGUSER") or "postgres"
    return f"{host}:{port}/{db}"
