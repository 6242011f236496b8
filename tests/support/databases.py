"""The PostgreSQL server under test (admin side) and the paths every test module needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def connect(settings: Mapping[str, str]) -> psycopg.Connection:
    """An autocommit connection to the database PG*-style ``settings`` name."""
    return psycopg.connect(
        host=settings["PGHOST"],
        port=settings["PGPORT"],
        user=settings["PGUSER"],
        dbname=settings["PGDATABASE"],
        autocommit=True,
    )


@dataclass(frozen=True)
class PgServer:
    """Admin connection settings of the server under test."""

    settings: Mapping[str, str]
    kind: str

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(
            host=self.settings["PGHOST"],
            port=self.settings["PGPORT"],
            user=self.settings["PGUSER"],
            dbname=dbname,
            **kwargs,
        )

    def database_settings(self, dbname: str) -> dict[str, str]:
        return {**self.settings, "PGDATABASE": dbname}

    def recreate_database(self, dbname: str) -> dict[str, str]:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        return self.database_settings(dbname)

    def drop_database(self, dbname: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )

    def terminate_connections(self, dbname: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (dbname,),
            )

    def clone_database(self, template: str, name: str) -> None:
        """Replace ``name`` by a copy of ``template`` (CREATE DATABASE … TEMPLATE)."""
        self.terminate_connections(template)
        self.drop_database(name)
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
