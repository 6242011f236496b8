"""The sample's reference data, read from the files of ``validation/sample_data/``.

The 11 GICS sectors, the real stocks, the 24 tracked ETFs, the crypto ETFs, the 20 themes, the
market-cap curve of US-listed stocks and the words of generated company names, as typed tuples.
The files' columns and fields are described in ``validation/sample_data/README.md``; the figures
they must give (docs/design.md §1) are checked here and when the base block is built.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from validation.errors import UserFacingError

DATA_DIR = Path(__file__).resolve().parent / "sample_data"
FLAG_LETTERS = frozenset("SQDAFGV")  # the stocks' flags (validation/sample_data/README.md)


@dataclass(frozen=True, slots=True)
class Sector:
    code: str
    key: str
    name: str
    industries: tuple[str, ...]
    description: str
    growth_share: float  # share of growth-style stocks (VUG/SCHG vs VTV)
    weight: float  # share of the generated (non-S&P) stocks
    words: tuple[str, ...]  # for generated company names


@dataclass(frozen=True, slots=True)
class RealStock:
    ticker: str
    name: str
    sector: int  # index into SECTORS
    industry: str
    cap_billions: float
    flags: str


@dataclass(frozen=True, slots=True)
class Etf:
    ticker: str
    name: str
    holdings: int
    has_threshold: bool
    sector: str | None = None  # sector code of a Select Sector SPDR


@dataclass(frozen=True, slots=True)
class Theme:
    key: str
    name: str
    symbols: tuple[str, ...]
    description: str
    criteria: str
    related: tuple[str, ...]


# --- reading the files --------------------------------------------------------------------


def _broken(name: str, problem: str) -> NoReturn:
    raise UserFacingError(
        f"validation/sample_data/{name}: {problem}; fix the file (its format is described in "
        "validation/sample_data/README.md)."
    )


def _csv_rows(name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a CSV file whose header must be exactly ``columns``."""
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != list(columns):
            _broken(name, f"the header must be {','.join(columns)}, not {reader.fieldnames}")
        rows = list(reader)
    for number, row in enumerate(rows, 2):
        if None in row or any(value is None for value in row.values()):
            _broken(name, f"line {number} must have {len(columns)} fields")
    return rows


def _json(name: str) -> Any:
    try:
        return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    except ValueError as exc:
        _broken(name, f"not valid JSON ({exc})")


def _json_records(name: str, fields: Sequence[str]) -> list[dict[str, Any]]:
    """The objects of a JSON array, each with exactly ``fields``."""
    records = _json(name)
    if not isinstance(records, list):
        _broken(name, "the file must hold an array of objects")
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict) or list(record) != list(fields):
            _broken(name, f"object {number} must have the fields {', '.join(fields)}, in order")
    return records


def _strings(value: Any, name: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        _broken(name, f"{where} must be an array of strings")
    return tuple(value)


def _read_sectors() -> tuple[Sector, ...]:
    name = "sectors.json"
    fields = ("code", "key", "name", "description", "growth_share", "weight", "industries")
    sectors = []
    for record in _json_records(name, (*fields, "name_words")):
        where = f"sector {record['code']!r}"
        sectors.append(
            Sector(
                str(record["code"]),
                str(record["key"]),
                str(record["name"]),
                _strings(record["industries"], name, f"{where}: industries"),
                str(record["description"]),
                float(record["growth_share"]),
                float(record["weight"]),
                _strings(record["name_words"], name, f"{where}: name_words"),
            )
        )
    return tuple(sectors)


def _read_real_stocks(sectors: Sequence[Sector]) -> tuple[RealStock, ...]:
    name = "stocks.csv"
    sector_by_code = {s.code: i for i, s in enumerate(sectors)}
    columns = ("ticker", "name", "sector", "industry", "market_cap_billions", "flags")
    stocks = []
    for number, row in enumerate(_csv_rows(name, columns), 2):
        sector = sector_by_code.get(row["sector"])
        if sector is None:
            _broken(name, f"line {number}: unknown sector code {row['sector']!r}")
        if row["industry"] not in sectors[sector].industries:
            _broken(name, f"line {number}: {row['industry']!r} is not an industry of its sector")
        if not set(row["flags"]) <= FLAG_LETTERS:
            _broken(name, f"line {number}: flags are letters of {''.join(sorted(FLAG_LETTERS))}")
        try:
            cap = float(row["market_cap_billions"])
        except ValueError:
            _broken(name, f"line {number}: market_cap_billions must be a number")
        stocks.append(
            RealStock(row["ticker"], row["name"], sector, row["industry"], cap, row["flags"])
        )
    return tuple(stocks)


def _read_etfs(sectors: Sequence[Sector]) -> tuple[Etf, ...]:
    name = "etfs.csv"
    codes = {s.code for s in sectors}
    etfs = []
    rows = _csv_rows(name, ("ticker", "name", "holdings", "market_cap_threshold", "sector"))
    for number, row in enumerate(rows, 2):
        if not row["holdings"].isdigit() or row["market_cap_threshold"] not in ("yes", "no"):
            _broken(name, f"line {number}: holdings is a count, market_cap_threshold yes or no")
        if row["sector"] and row["sector"] not in codes:
            _broken(name, f"line {number}: unknown sector code {row['sector']!r}")
        etfs.append(
            Etf(
                row["ticker"],
                row["name"],
                int(row["holdings"]),
                row["market_cap_threshold"] == "yes",
                row["sector"] or None,
            )
        )
    return tuple(etfs)


def _read_themes() -> tuple[Theme, ...]:
    name = "themes.json"
    fields = ("key", "name", "description", "selection_criteria", "symbols", "related_themes")
    return tuple(
        Theme(
            str(record["key"]),
            str(record["name"]),
            _strings(record["symbols"], name, f"theme {record['key']!r}: symbols"),
            str(record["description"]),
            str(record["selection_criteria"]),
            _strings(record["related_themes"], name, f"theme {record['key']!r}: related_themes"),
        )
        for record in _json_records(name, fields)
    )


def _read_cap_curve() -> tuple[tuple[int, float], ...]:
    name = "market_cap_curve.csv"
    rows = _csv_rows(name, ("rank", "market_cap_usd"))
    try:
        anchors = tuple((int(row["rank"]), float(row["market_cap_usd"])) for row in rows)
    except ValueError:
        _broken(name, "rank is an integer and market_cap_usd a number on every line")
    if [rank for rank, _ in anchors] != sorted({rank for rank, _ in anchors}):
        _broken(name, "the ranks must ascend")
    return anchors


def _read_company_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    name = "company_names.json"
    words = _json(name)
    if not isinstance(words, dict) or list(words) != ["stems", "suffixes"]:
        _broken(name, "the file must hold an object with the fields stems, suffixes")
    return _strings(words["stems"], name, "stems"), _strings(words["suffixes"], name, "suffixes")


# --- the data -----------------------------------------------------------------------------

SECTORS: tuple[Sector, ...] = _read_sectors()
SECTOR_BY_CODE: dict[str, int] = {s.code: i for i, s in enumerate(SECTORS)}
REAL_STOCKS: tuple[RealStock, ...] = _read_real_stocks(SECTORS)
ETFS: tuple[Etf, ...] = _read_etfs(SECTORS)
CRYPTO_ETFS: tuple[tuple[str, str], ...] = tuple(
    (row["ticker"], row["name"]) for row in _csv_rows("crypto_etfs.csv", ("ticker", "name"))
)
THEMES: tuple[Theme, ...] = _read_themes()
# (rank, market cap in dollars) of US-listed stocks, interpolated log-linearly
CAP_ANCHORS: tuple[tuple[int, float], ...] = _read_cap_curve()
NAME_STEMS, NAME_SUFFIXES = _read_company_names()
RETIRED_TICKERS = ("FB", "TWTR", "ATVI", "SQ")  # still listed by the oldest legacy rows

# Figures of docs/design.md §1, checked against the data above when a base block is built.
EXPECTED_ETF_HOLDINGS: dict[str, int] = {e.ticker: e.holdings for e in ETFS}
EXPECTED_THEME_SIZES: dict[str, int] = {
    "crypto_miners": 9,
    "robotics_automation": 17,
    "drones_uav": 13,
    "gold_miners": 12,
    "silver_miners": 9,
    "space_technology": 11,
    "clean_energy": 12,
    "battery_storage": 11,
    "ai_machine_learning": 14,
    "quantum_computing": 7,
    "genomics_biotech": 10,
    "cloud_computing": 12,
    "cybersecurity": 11,
    "five_g_infrastructure": 10,
    "electric_vehicles": 12,
    "autonomous_vehicles": 10,
    "water_technology": 9,
    "agriculture_technology": 10,
    "nuclear_energy": 10,
    "rare_earth_minerals": 10,
}
SECTOR_KEYS: tuple[str, ...] = tuple(s.key for s in SECTORS)
SECTOR_NAMES: dict[str, str] = {s.key: s.name for s in SECTORS}
