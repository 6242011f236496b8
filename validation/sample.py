"""A deterministic, realistic legacy ``cache_entries`` table, and a fast COPY loader for it.

The sample reproduces the real figures of docs/design.md §1 at scale 1: 24 ETFs with their exact
holdings counts, 20 themes, 11 GICS sectors with 53 industries, about 3,700 distinct symbols (a few
hundred real tickers, the rest generated), one ``stock_metadata`` entry per symbol, the three legacy
shapes of ``stock_universe`` / ``etf_universe``, a key stored twice under two names, NULL
``updated_at`` on every seventh row, unrelated cache types, and (DEFAULT only) two rows whose
environment the migration must reject. Everything derives from ``seed`` through private
``random.Random`` streams and a base time ``as_of``, so the same arguments always give the same rows
in the same order (and, loaded into a fresh table, the same ids).

Row stamps (``created_at`` / ``updated_at``) are laid out backwards from ``as_of``: the newest
write is ``as_of`` itself. ``generate_entries`` defaults to the fixed BASE_TIME (pure and
repeatable); ``load_sample`` defaults to the moment of loading, so a freshly loaded sample is
fresh to ``dbt source freshness``. The JSON values (``last_updated`` inside them included) never
depend on ``as_of``.

``scale`` N adds N - 1 copies of the whole universe (new generated tickers, same sectors, same
membership structure), so ETFs, themes, symbols and memberships all grow N-fold.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from validation.errors import UserFacingError
from validation.targets import ENVIRONMENTS

VALID_ENVIRONMENTS: tuple[str, ...] = ENVIRONMENTS
BASE_TIME = datetime(2025, 12, 5, 10, 0, tzinfo=UTC)
LAST_UPDATED = "2025-12-05T10:00:00"
MARKET_CAP_THRESHOLD = 5_000_000_000
UNIVERSE_SIZE = 3_700  # distinct symbols per block (one block per unit of scale)
MAX_SCALE = 1_000
TABLE_NAME = "cache_entries"
COPY_COLUMNS = (
    "type",
    "name",
    "key",
    "value",
    "environment",
    "description",
    "created_at",
    "updated_at",
)

CREATE_SCHEMA_SQL = sql.SQL("create schema if not exists {schema}")
CREATE_TABLE_SQL = sql.SQL(
    """create table if not exists {table} (
  id          serial primary key,
  type        varchar(50)  not null,
  name        varchar(100) not null,
  key         varchar(100) not null,
  value       jsonb        not null,
  environment varchar(10)  not null,
  description text,
  created_at  timestamptz  default current_timestamp,
  updated_at  timestamptz,
  constraint unique_cache_entry unique (type, name, key, environment)
)"""
)
COPY_SQL = sql.SQL("copy {table} ({columns}) from stdin")


# --- public data types ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One row of the legacy table (without its serial id)."""

    type: str
    name: str
    key: str
    value: Any  # serialised to JSON
    environment: str
    description: str | None
    created_at: datetime  # timezone-aware (UTC)
    updated_at: datetime | None


@dataclass(frozen=True)
class LoadSummary:
    """What ``load_sample`` wrote."""

    schema: str
    environments: tuple[str, ...]
    scale: int
    seed: int
    rows_by_type: dict[str, int]
    rows_by_environment: dict[str, int]
    deleted_rows: int
    generate_seconds: float
    copy_seconds: float
    elapsed_seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_environment.values())

    def __str__(self) -> str:
        per_env = ", ".join(f"{env} {n:,}" for env, n in self.rows_by_environment.items())
        return (
            f"{self.total_rows:,} cache_entries rows loaded into {self.schema} ({per_env}; "
            f"{self.deleted_rows:,} replaced) in {self.elapsed_seconds:.1f} s "
            f"(generate {self.generate_seconds:.1f} s, copy {self.copy_seconds:.1f} s)"
        )


# --- reference data: sectors ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sector:
    code: str
    key: str
    name: str
    industries: tuple[str, ...]
    description: str
    growth_share: float  # share of growth-style stocks (VUG/SCHG vs VTV)
    weight: float  # share of the generated (non-S&P) stocks
    words: tuple[str, ...]  # for generated company names


_SECTORS: tuple[_Sector, ...] = (
    _Sector(
        "IT",
        "information_technology",
        "Information Technology",
        (
            "Software",
            "Semiconductors",
            "Technology Hardware",
            "IT Services",
            "Electronic Equipment",
        ),
        "Software, semiconductors, hardware and IT services companies.",
        0.8,
        0.14,
        ("Software", "Systems", "Technologies", "Semiconductor", "Networks", "Data", "Digital"),
    ),
    _Sector(
        "HC",
        "health_care",
        "Health Care",
        (
            "Pharmaceuticals",
            "Biotechnology",
            "Medical Devices",
            "Health Care Providers",
            "Life Sciences Tools",
        ),
        "Pharmaceutical, biotechnology, medical device and health care services companies.",
        0.35,
        0.21,
        ("Therapeutics", "Biosciences", "Pharmaceuticals", "Medical", "Health", "Diagnostics"),
    ),
    _Sector(
        "FN",
        "financials",
        "Financials",
        ("Banks", "Insurance", "Capital Markets", "Financial Services", "Consumer Finance"),
        "Banks, insurers, asset managers, exchanges and payment companies.",
        0.2,
        0.17,
        ("Financial", "Bancorp", "Capital", "Insurance", "Bancshares", "Payments", "Trust"),
    ),
    _Sector(
        "CD",
        "consumer_discretionary",
        "Consumer Discretionary",
        (
            "Retail",
            "Automobiles",
            "Hotels, Restaurants & Leisure",
            "Household Durables",
            "Textiles & Apparel",
        ),
        "Retailers, automakers, restaurants, travel, leisure and apparel companies.",
        0.6,
        0.11,
        ("Brands", "Retail", "Motors", "Restaurants", "Resorts", "Outdoor", "Apparel"),
    ),
    _Sector(
        "CM",
        "communication_services",
        "Communication Services",
        ("Interactive Media", "Entertainment", "Telecommunications", "Media"),
        "Internet platforms, telecom carriers, media and entertainment companies.",
        0.7,
        0.03,
        ("Media", "Communications", "Entertainment", "Broadcasting", "Interactive", "Studios"),
    ),
    _Sector(
        "IN",
        "industrials",
        "Industrials",
        (
            "Aerospace & Defense",
            "Machinery",
            "Transportation",
            "Building Products",
            "Professional Services",
        ),
        "Aerospace, defense, machinery, transportation and business services companies.",
        0.3,
        0.14,
        ("Industries", "Aerospace", "Machinery", "Logistics", "Engineering", "Controls"),
    ),
    _Sector(
        "ST",
        "consumer_staples",
        "Consumer Staples",
        (
            "Food Products",
            "Beverages",
            "Household Products",
            "Consumer Staples Retail",
            "Tobacco",
        ),
        "Food, beverage, household product, tobacco and grocery companies.",
        0.15,
        0.03,
        ("Foods", "Beverage", "Farms", "Consumer Products", "Grocers", "Brewing"),
    ),
    _Sector(
        "EN",
        "energy",
        "Energy",
        ("Oil & Gas Exploration", "Integrated Oil & Gas", "Oil & Gas Equipment", "Midstream"),
        "Oil and gas producers, refiners, pipelines and oilfield services companies.",
        0.1,
        0.05,
        ("Energy", "Petroleum", "Resources", "Oil & Gas", "Midstream", "Exploration"),
    ),
    _Sector(
        "UT",
        "utilities",
        "Utilities",
        (
            "Electric Utilities",
            "Gas Utilities",
            "Multi-Utilities",
            "Water Utilities",
            "Independent Power Producers",
        ),
        "Electric, gas and water utilities and independent power producers.",
        0.1,
        0.02,
        ("Power", "Electric", "Utilities", "Gas", "Water", "Energy Services"),
    ),
    _Sector(
        "RE",
        "real_estate",
        "Real Estate",
        (
            "Residential REITs",
            "Industrial REITs",
            "Retail REITs",
            "Specialized REITs",
            "Real Estate Services",
        ),
        "Real estate investment trusts and real estate services companies.",
        0.15,
        0.06,
        ("Realty", "Properties", "REIT", "Residential", "Storage", "Land"),
    ),
    _Sector(
        "MA",
        "materials",
        "Materials",
        (
            "Chemicals",
            "Metals & Mining",
            "Construction Materials",
            "Containers & Packaging",
            "Precious Metals",
        ),
        "Chemicals, metals and mining, construction materials and packaging companies.",
        0.15,
        0.04,
        ("Materials", "Chemicals", "Mining", "Metals", "Steel", "Packaging"),
    ),
)
_SECTOR_BY_CODE: dict[str, int] = {s.code: i for i, s in enumerate(_SECTORS)}

# --- reference data: real stocks ----------------------------------------------------------------
# ticker|company|sector code|industry index (into _SECTORS[...].industries)|market cap ($B)|flags
# flags: S S&P 500, Q Nasdaq-100, D Dow 30, A ARK Innovation, F foreign listing (no US index
# fund holds it), G growth style, V value style (otherwise drawn from the sector's growth share).
_REAL_STOCKS_TEXT = """
AAPL|Apple Inc.|IT|2|3600|SQDG
MSFT|Microsoft Corporation|IT|0|3700|SQDG
NVDA|NVIDIA Corporation|IT|1|4400|SQDG
AVGO|Broadcom Inc.|IT|1|1600|SQG
ORCL|Oracle Corporation|IT|0|620|SG
CRM|Salesforce, Inc.|IT|0|235|SDG
AMD|Advanced Micro Devices, Inc.|IT|1|360|SQG
ADBE|Adobe Inc.|IT|0|145|SQG
CSCO|Cisco Systems, Inc.|IT|2|280|SQDV
ACN|Accenture plc|IT|3|160|SV
IBM|International Business Machines Corporation|IT|3|290|SDV
INTU|Intuit Inc.|IT|0|185|SQG
TXN|Texas Instruments Incorporated|IT|1|150|SQV
QCOM|QUALCOMM Incorporated|IT|1|180|SQV
NOW|ServiceNow, Inc.|IT|0|175|SG
AMAT|Applied Materials, Inc.|IT|1|195|SQG
MU|Micron Technology, Inc.|IT|1|260|SQG
LRCX|Lam Research Corporation|IT|1|195|SQG
KLAC|KLA Corporation|IT|1|155|SQG
ADI|Analog Devices, Inc.|IT|1|130|SQ
INTC|Intel Corporation|IT|1|175|SQV
PANW|Palo Alto Networks, Inc.|IT|0|130|SQG
ANET|Arista Networks, Inc.|IT|2|170|SG
CRWD|CrowdStrike Holdings, Inc.|IT|0|125|SQG
PLTR|Palantir Technologies Inc.|IT|0|420|SQAG
SNPS|Synopsys, Inc.|IT|0|75|SQG
CDNS|Cadence Design Systems, Inc.|IT|0|88|SQG
APH|Amphenol Corporation|IT|4|165|SG
MSI|Motorola Solutions, Inc.|IT|2|65|S
DELL|Dell Technologies Inc.|IT|2|90|S
FTNT|Fortinet, Inc.|IT|0|63|SQG
ADSK|Autodesk, Inc.|IT|0|66|SQG
WDAY|Workday, Inc.|IT|0|62|SQG
ROP|Roper Technologies, Inc.|IT|0|50|SQ
NXPI|NXP Semiconductors N.V.|IT|1|52|SQ
MCHP|Microchip Technology Incorporated|IT|1|34|SQ
TEL|TE Connectivity plc|IT|4|66|S
GLW|Corning Incorporated|IT|4|72|S
HPQ|HP Inc.|IT|2|24|SV
HPE|Hewlett Packard Enterprise Company|IT|2|31|SV
IT|Gartner, Inc.|IT|3|19|S
CTSH|Cognizant Technology Solutions Corporation|IT|3|37|SQV
MPWR|Monolithic Power Systems, Inc.|IT|1|46|S
ON|ON Semiconductor Corporation|IT|1|22|SQ
KEYS|Keysight Technologies, Inc.|IT|4|30|S
CDW|CDW Corporation|IT|3|19|SQ
FICO|Fair Isaac Corporation|IT|0|42|S
TYL|Tyler Technologies, Inc.|IT|0|21|S
SMCI|Super Micro Computer, Inc.|IT|2|24|S
WDC|Western Digital Corporation|IT|2|52|S
STX|Seagate Technology Holdings plc|IT|2|58|S
NTAP|NetApp, Inc.|IT|2|23|S
PTC|PTC Inc.|IT|0|22|S
TER|Teradyne, Inc.|IT|1|30|S
SWKS|Skyworks Solutions, Inc.|IT|1|10|S
FSLR|First Solar, Inc.|IT|1|28|S
ZBRA|Zebra Technologies Corporation|IT|4|13|S
TRMB|Trimble Inc.|IT|4|19|S
JBL|Jabil Inc.|IT|4|23|S
GDDY|GoDaddy Inc.|IT|3|20|S
AKAM|Akamai Technologies, Inc.|IT|3|11|S
EPAM|EPAM Systems, Inc.|IT|3|9|S
FFIV|F5, Inc.|IT|2|14|S
GEN|Gen Digital Inc.|IT|0|17|S
TDY|Teledyne Technologies Incorporated|IT|4|24|S
DDOG|Datadog, Inc.|IT|0|55|SQG
APP|AppLovin Corporation|IT|0|210|SQG
VRSN|VeriSign, Inc.|IT|3|24|S
TTD|The Trade Desk, Inc.|IT|0|20|SQ
MRVL|Marvell Technology, Inc.|IT|1|72|QG
MSTR|Strategy Inc|IT|0|50|Q
ZS|Zscaler, Inc.|IT|0|45|QG
TEAM|Atlassian Corporation|IT|0|42|QG
MDB|MongoDB, Inc.|IT|0|28|Q
PATH|UiPath Inc.|IT|0|7|A
MARA|MARA Holdings, Inc.|IT|3|6|
RIOT|Riot Platforms, Inc.|IT|3|5|
CLSK|CleanSpark, Inc.|IT|3|3|
HUT|Hut 8 Corp.|IT|3|4|
CIFR|Cipher Mining Inc.|IT|3|5|
WULF|TeraWulf Inc.|IT|3|5|
CGNX|Cognex Corporation|IT|4|6|
ONDS|Ondas Holdings Inc.|IT|2|2|
ENPH|Enphase Energy, Inc.|IT|1|4|
SEDG|SolarEdge Technologies, Inc.|IT|1|2|
ENVX|Enovix Corporation|IT|4|2|
AI|C3.ai, Inc.|IT|0|2|
SOUN|SoundHound AI, Inc.|IT|0|5|
BBAI|BigBear.ai Holdings, Inc.|IT|0|2|
SNOW|Snowflake Inc.|IT|0|75|G
CRWV|CoreWeave, Inc.|IT|3|45|G
IONQ|IonQ, Inc.|IT|2|16|
RGTI|Rigetti Computing, Inc.|IT|2|9|
QBTS|D-Wave Quantum Inc.|IT|2|8|
QUBT|Quantum Computing Inc.|IT|2|3|
NET|Cloudflare, Inc.|IT|0|70|G
OKTA|Okta, Inc.|IT|0|15|
S|SentinelOne, Inc.|IT|0|6|
TENB|Tenable Holdings, Inc.|IT|0|3|
QLYS|Qualys, Inc.|IT|0|5|
OUST|Ouster, Inc.|IT|4|1.4|
AUR|Aurora Innovation, Inc.|IT|0|9|
LAZR|Luminar Technologies, Inc.|IT|4|0.1|
PL|Planet Labs PBC|IT|3|3|
BKSY|BlackSky Technology Inc.|IT|3|0.6|
ASML|ASML Holding N.V.|IT|1|400|QFG
SHOP|Shopify Inc.|IT|0|200|QAFG
ARM|Arm Holdings plc|IT|1|150|QFG
GFS|GlobalFoundries Inc.|IT|1|20|QF
TSM|Taiwan Semiconductor Manufacturing Company Limited|IT|1|1500|F
BITF|Bitfarms Ltd.|IT|3|1|F
IREN|IREN Limited|IT|3|12|F
BTDR|Bitdeer Technologies Group|IT|3|3|F
ARQQ|Arqit Quantum Inc.|IT|0|0.5|F
CYBR|CyberArk Software Ltd.|IT|0|24|F
CHKP|Check Point Software Technologies Ltd.|IT|0|21|F
ERIC|Telefonaktiebolaget LM Ericsson|IT|2|28|F
NOK|Nokia Oyj|IT|2|33|F
INVZ|Innoviz Technologies Ltd.|IT|4|0.3|F
CSIQ|Canadian Solar Inc.|IT|1|2|F
LLY|Eli Lilly and Company|HC|0|950|SG
JNJ|Johnson & Johnson|HC|0|480|SDV
ABBV|AbbVie Inc.|HC|0|400|SV
UNH|UnitedHealth Group Incorporated|HC|3|300|SDV
MRK|Merck & Co., Inc.|HC|0|250|SDV
TMO|Thermo Fisher Scientific Inc.|HC|4|220|SV
ABT|Abbott Laboratories|HC|2|225|SV
ISRG|Intuitive Surgical, Inc.|HC|2|200|SQG
AMGN|Amgen Inc.|HC|1|180|SQDV
DHR|Danaher Corporation|HC|4|160|SV
PFE|Pfizer Inc.|HC|0|145|SV
BSX|Boston Scientific Corporation|HC|2|150|SG
SYK|Stryker Corporation|HC|2|140|S
GILD|Gilead Sciences, Inc.|HC|1|155|SQV
VRTX|Vertex Pharmaceuticals Incorporated|HC|1|115|SQ
MDT|Medtronic plc|HC|2|125|SV
BMY|Bristol-Myers Squibb Company|HC|0|100|SV
CVS|CVS Health Corporation|HC|3|100|SV
ELV|Elevance Health, Inc.|HC|3|75|SV
CI|The Cigna Group|HC|3|75|SV
HCA|HCA Healthcare, Inc.|HC|3|105|SV
MCK|McKesson Corporation|HC|3|105|SV
REGN|Regeneron Pharmaceuticals, Inc.|HC|1|70|SQ
ZTS|Zoetis Inc.|HC|0|55|S
BDX|Becton, Dickinson and Company|HC|2|55|SV
COR|Cencora, Inc.|HC|3|65|SV
EW|Edwards Lifesciences Corporation|HC|2|50|S
IDXX|IDEXX Laboratories, Inc.|HC|2|58|SQG
A|Agilent Technologies, Inc.|HC|4|40|S
IQV|IQVIA Holdings Inc.|HC|4|38|S
GEHC|GE HealthCare Technologies Inc.|HC|2|35|SQ
RMD|ResMed Inc.|HC|2|38|S
HUM|Humana Inc.|HC|3|30|SV
DXCM|DexCom, Inc.|HC|2|26|SQ
MTD|Mettler-Toledo International Inc.|HC|4|29|S
CAH|Cardinal Health, Inc.|HC|3|48|SV
BIIB|Biogen Inc.|HC|1|24|SQV
WAT|Waters Corporation|HC|4|22|S
STE|STERIS plc|HC|2|25|S
ZBH|Zimmer Biomet Holdings, Inc.|HC|2|19|SV
LH|Labcorp Holdings Inc.|HC|3|22|S
DGX|Quest Diagnostics Incorporated|HC|3|21|S
CNC|Centene Corporation|HC|3|18|SV
MRNA|Moderna, Inc.|HC|1|10|S
PODD|Insulet Corporation|HC|2|23|S
HOLX|Hologic, Inc.|HC|2|17|S
COO|The Cooper Companies, Inc.|HC|2|15|S
ALGN|Align Technology, Inc.|HC|2|10|S
INCY|Incyte Corporation|HC|1|19|S
VTRS|Viatris Inc.|HC|0|12|SV
TECH|Bio-Techne Corporation|HC|4|9|S
RVTY|Revvity, Inc.|HC|4|11|S
CRL|Charles River Laboratories International, Inc.|HC|4|8|S
MOH|Molina Healthcare, Inc.|HC|3|9|S
UHS|Universal Health Services, Inc.|HC|3|14|S
DVA|DaVita Inc.|HC|3|10|S
BAX|Baxter International Inc.|HC|2|11|S
HSIC|Henry Schein, Inc.|HC|3|9|S
SOLV|Solventum Corporation|HC|2|13|S
WST|West Pharmaceutical Services, Inc.|HC|2|20|S
TEM|Tempus AI, Inc.|HC|4|13|A
BEAM|Beam Therapeutics Inc.|HC|1|2.3|A
TXG|10x Genomics, Inc.|HC|4|1.6|A
NTLA|Intellia Therapeutics, Inc.|HC|1|1.2|A
ILMN|Illumina, Inc.|HC|4|15|A
VCYT|Veracyte, Inc.|HC|4|3|A
TWST|Twist Bioscience Corporation|HC|4|2|A
PACB|Pacific Biosciences of California, Inc.|HC|4|0.5|
EDIT|Editas Medicine, Inc.|HC|1|0.2|
AZN|AstraZeneca PLC|HC|0|240|QF
CRSP|CRISPR Therapeutics AG|HC|1|5|AF
BRK.B|Berkshire Hathaway Inc. (Class B)|FN|3|1070|SV
JPM|JPMorgan Chase & Co.|FN|0|850|SDV
V|Visa Inc.|FN|3|650|SDG
MA|Mastercard Incorporated|FN|3|520|SG
BAC|Bank of America Corporation|FN|0|390|SV
WFC|Wells Fargo & Company|FN|0|270|SV
GS|The Goldman Sachs Group, Inc.|FN|2|245|SDV
MS|Morgan Stanley|FN|2|255|SV
AXP|American Express Company|FN|4|250|SDV
SPGI|S&P Global Inc.|FN|2|150|S
C|Citigroup Inc.|FN|0|185|SV
BLK|BlackRock, Inc.|FN|2|170|SV
SCHW|The Charles Schwab Corporation|FN|2|170|SV
PGR|The Progressive Corporation|FN|1|140|SV
CB|Chubb Limited|FN|1|115|SV
MMC|Marsh & McLennan Companies, Inc.|FN|1|90|S
BX|Blackstone Inc.|FN|2|180|S
KKR|KKR & Co. Inc.|FN|2|115|S
COF|Capital One Financial Corporation|FN|4|140|SV
ICE|Intercontinental Exchange, Inc.|FN|2|90|S
CME|CME Group Inc.|FN|2|100|SV
PYPL|PayPal Holdings, Inc.|FN|3|62|SQV
AON|Aon plc|FN|1|75|S
MCO|Moody's Corporation|FN|2|87|S
USB|U.S. Bancorp|FN|0|75|SV
PNC|The PNC Financial Services Group, Inc.|FN|0|75|SV
TFC|Truist Financial Corporation|FN|0|60|SV
AJG|Arthur J. Gallagher & Co.|FN|1|65|S
TRV|The Travelers Companies, Inc.|FN|1|62|SDV
AFL|Aflac Incorporated|FN|1|58|SV
ALL|The Allstate Corporation|FN|1|53|SV
MET|MetLife, Inc.|FN|1|52|SV
AIG|American International Group, Inc.|FN|1|44|SV
PRU|Prudential Financial, Inc.|FN|1|37|SV
BK|The Bank of New York Mellon Corporation|FN|2|80|SV
APO|Apollo Global Management, Inc.|FN|2|75|S
COIN|Coinbase Global, Inc.|FN|2|80|SAG
FI|Fiserv, Inc.|FN|3|36|S
FIS|Fidelity National Information Services, Inc.|FN|3|35|S
MSCI|MSCI Inc.|FN|2|43|S
AMP|Ameriprise Financial, Inc.|FN|2|46|S
HIG|The Hartford Insurance Group, Inc.|FN|1|37|SV
NDAQ|Nasdaq, Inc.|FN|2|51|S
STT|State Street Corporation|FN|2|33|SV
RJF|Raymond James Financial, Inc.|FN|2|32|S
MTB|M&T Bank Corporation|FN|0|30|SV
FITB|Fifth Third Bancorp|FN|0|28|SV
HBAN|Huntington Bancshares Incorporated|FN|0|24|SV
RF|Regions Financial Corporation|FN|0|22|SV
CFG|Citizens Financial Group, Inc.|FN|0|22|SV
KEY|KeyCorp|FN|0|19|SV
SYF|Synchrony Financial|FN|4|27|SV
NTRS|Northern Trust Corporation|FN|2|25|S
TROW|T. Rowe Price Group, Inc.|FN|2|22|S
CINF|Cincinnati Financial Corporation|FN|1|25|S
WRB|W. R. Berkley Corporation|FN|1|27|S
BRO|Brown & Brown, Inc.|FN|1|27|S
L|Loews Corporation|FN|1|21|S
GPN|Global Payments Inc.|FN|3|19|S
CPAY|Corpay, Inc.|FN|3|22|S
JKHY|Jack Henry & Associates, Inc.|FN|3|12|
HOOD|Robinhood Markets, Inc.|FN|2|110|SAG
IBKR|Interactive Brokers Group, Inc.|FN|2|110|S
ACGL|Arch Capital Group Ltd.|FN|1|33|S
BEN|Franklin Resources, Inc.|FN|2|12|V
IVZ|Invesco Ltd.|FN|2|10|V
GL|Globe Life Inc.|FN|1|11|V
AIZ|Assurant, Inc.|FN|1|11|V
ERIE|Erie Indemnity Company|FN|1|17|
CRCL|Circle Internet Group, Inc.|FN|3|20|A
SOFI|SoFi Technologies, Inc.|FN|4|32|A
AMZN|Amazon.com, Inc.|CD|0|2450|SQDG
TSLA|Tesla, Inc.|CD|1|1450|SQAG
HD|The Home Depot, Inc.|CD|0|370|SDV
MCD|McDonald's Corporation|CD|2|220|SDV
BKNG|Booking Holdings Inc.|CD|2|170|SQG
LOW|Lowe's Companies, Inc.|CD|0|140|SV
TJX|The TJX Companies, Inc.|CD|0|165|S
SBUX|Starbucks Corporation|CD|2|98|SQ
NKE|NIKE, Inc.|CD|4|95|SD
CMG|Chipotle Mexican Grill, Inc.|CD|2|48|SG
ORLY|O'Reilly Automotive, Inc.|CD|0|85|SQG
ABNB|Airbnb, Inc.|CD|2|75|SQG
MAR|Marriott International, Inc.|CD|2|78|SQ
HLT|Hilton Worldwide Holdings Inc.|CD|2|65|S
AZO|AutoZone, Inc.|CD|0|66|S
GM|General Motors Company|CD|1|68|SV
F|Ford Motor Company|CD|1|50|SV
RCL|Royal Caribbean Cruises Ltd.|CD|2|75|S
ROST|Ross Stores, Inc.|CD|0|52|SQ
DHI|D.R. Horton, Inc.|CD|3|48|SV
LEN|Lennar Corporation|CD|3|32|SV
PHM|PulteGroup, Inc.|CD|3|24|SV
NVR|NVR, Inc.|CD|3|22|S
YUM|Yum! Brands, Inc.|CD|2|41|S
DRI|Darden Restaurants, Inc.|CD|2|21|S
LULU|lululemon athletica inc.|CD|4|21|SQ
DECK|Deckers Outdoor Corporation|CD|4|15|S
TPR|Tapestry, Inc.|CD|4|23|S
RL|Ralph Lauren Corporation|CD|4|21|S
EBAY|eBay Inc.|CD|0|38|S
TSCO|Tractor Supply Company|CD|0|28|S
ULTA|Ulta Beauty, Inc.|CD|0|24|S
BBY|Best Buy Co., Inc.|CD|0|16|SV
GPC|Genuine Parts Company|CD|0|18|S
APTV|Aptiv PLC|CD|1|17|S
LKQ|LKQ Corporation|CD|0|8|S
POOL|Pool Corporation|CD|0|11|S
EXPE|Expedia Group, Inc.|CD|2|30|S
CCL|Carnival Corporation & plc|CD|2|37|S
NCLH|Norwegian Cruise Line Holdings Ltd.|CD|2|10|S
LVS|Las Vegas Sands Corp.|CD|2|42|S
WYNN|Wynn Resorts, Limited|CD|2|13|S
MGM|MGM Resorts International|CD|2|10|S
DPZ|Domino's Pizza, Inc.|CD|2|14|S
KMX|CarMax, Inc.|CD|0|6|S
GRMN|Garmin Ltd.|CD|3|45|S
DASH|DoorDash, Inc.|CD|2|100|SQG
WSM|Williams-Sonoma, Inc.|CD|0|23|S
HAS|Hasbro, Inc.|CD|3|11|S
BF-B|Brown-Forman Corporation (Class B)|ST|1|13|S
MELI|MercadoLibre, Inc.|CD|0|105|QG
DKNG|DraftKings Inc.|CD|2|17|A
IRBT|iRobot Corporation|CD|3|0.1|
QS|QuantumScape Corporation|CD|1|7|
SLDP|Solid Power, Inc.|CD|1|0.6|
RIVN|Rivian Automotive, Inc.|CD|1|17|
LCID|Lucid Group, Inc.|CD|1|5|
PDD|PDD Holdings Inc.|CD|0|165|QF
NIO|NIO Inc.|CD|1|12|F
XPEV|XPeng Inc.|CD|1|18|F
LI|Li Auto Inc.|CD|1|20|F
PSNY|Polestar Automotive Holding UK PLC|CD|1|2|F
PONY|Pony AI Inc.|CD|1|5|F
MBLY|Mobileye Global Inc.|CD|1|12|F
GOOGL|Alphabet Inc. (Class A)|CM|0|3100|SQG
GOOG|Alphabet Inc. (Class C)|CM|0|3100|SQG
META|Meta Platforms, Inc.|CM|0|1600|SQG
NFLX|Netflix, Inc.|CM|1|470|SQG
TMUS|T-Mobile US, Inc.|CM|2|245|SQ
DIS|The Walt Disney Company|CM|1|200|SDV
CMCSA|Comcast Corporation|CM|3|105|SQV
VZ|Verizon Communications Inc.|CM|2|172|SDV
T|AT&T Inc.|CM|2|185|SV
CHTR|Charter Communications, Inc.|CM|3|30|SQV
EA|Electronic Arts Inc.|CM|1|50|SQ
TTWO|Take-Two Interactive Software, Inc.|CM|1|45|SQ
WBD|Warner Bros. Discovery, Inc.|CM|1|57|SQ
OMC|Omnicom Group Inc.|CM|3|15|S
IPG|The Interpublic Group of Companies, Inc.|CM|3|9|S
LYV|Live Nation Entertainment, Inc.|CM|1|33|S
FOXA|Fox Corporation (Class A)|CM|3|25|S
FOX|Fox Corporation (Class B)|CM|3|23|S
NWSA|News Corporation (Class A)|CM|3|15|S
NWS|News Corporation (Class B)|CM|3|7|S
MTCH|Match Group, Inc.|CM|0|8|S
PSKY|Paramount Skydance Corporation|CM|3|17|S
TKO|TKO Group Holdings, Inc.|CM|1|15|S
ROKU|Roku, Inc.|CM|1|14|A
RBLX|Roblox Corporation|CM|1|85|AG
ASTS|AST SpaceMobile, Inc.|CM|2|22|
IRDM|Iridium Communications Inc.|CM|2|2|
GE|GE Aerospace|IN|0|320|SV
CAT|Caterpillar Inc.|IN|1|260|SDV
RTX|RTX Corporation|IN|0|230|SV
UBER|Uber Technologies, Inc.|IN|2|190|SG
HON|Honeywell International Inc.|IN|1|125|SQDV
UNP|Union Pacific Corporation|IN|2|135|SV
BA|The Boeing Company|IN|0|155|SD
ETN|Eaton Corporation plc|IN|1|140|S
DE|Deere & Company|IN|1|130|SV
LMT|Lockheed Martin Corporation|IN|0|108|SV
ADP|Automatic Data Processing, Inc.|IN|4|115|SQ
GEV|GE Vernova Inc.|IN|1|165|SG
PH|Parker-Hannifin Corporation|IN|1|95|S
TT|Trane Technologies plc|IN|3|92|S
WM|Waste Management, Inc.|IN|4|85|S
UPS|United Parcel Service, Inc.|IN|2|78|SV
GD|General Dynamics Corporation|IN|0|90|SV
NOC|Northrop Grumman Corporation|IN|0|82|SV
MMM|3M Company|IN|1|88|SDV
ITW|Illinois Tool Works Inc.|IN|1|73|S
CTAS|Cintas Corporation|IN|4|78|SQ
TDG|TransDigm Group Incorporated|IN|0|75|S
EMR|Emerson Electric Co.|IN|1|74|S
CSX|CSX Corporation|IN|2|65|SQV
HWM|Howmet Aerospace Inc.|IN|0|80|S
JCI|Johnson Controls International plc|IN|3|72|S
CARR|Carrier Global Corporation|IN|3|48|S
NSC|Norfolk Southern Corporation|IN|2|64|SV
FDX|FedEx Corporation|IN|2|62|SV
PCAR|PACCAR Inc|IN|1|52|SQV
URI|United Rentals, Inc.|IN|1|52|S
RSG|Republic Services, Inc.|IN|4|68|S
CPRT|Copart, Inc.|IN|4|42|SQ
GWW|W.W. Grainger, Inc.|IN|1|46|S
FAST|Fastenal Company|IN|1|47|SQ
PAYX|Paychex, Inc.|IN|4|42|SQ
CMI|Cummins Inc.|IN|1|60|SV
LHX|L3Harris Technologies, Inc.|IN|0|52|S
AME|AMETEK, Inc.|IN|1|44|S
AXON|Axon Enterprise, Inc.|IN|0|42|SQG
ODFL|Old Dominion Freight Line, Inc.|IN|2|29|SQ
VRSK|Verisk Analytics, Inc.|IN|4|31|SQ
IR|Ingersoll Rand Inc.|IN|1|31|S
OTIS|Otis Worldwide Corporation|IN|1|35|S
PWR|Quanta Services, Inc.|IN|3|66|S
ROK|Rockwell Automation, Inc.|IN|1|40|S
XYL|Xylem Inc.|IN|1|34|S
DAL|Delta Air Lines, Inc.|IN|2|40|SV
UAL|United Airlines Holdings, Inc.|IN|2|32|S
LUV|Southwest Airlines Co.|IN|2|17|S
WAB|Westinghouse Air Brake Technologies Corporation|IN|1|35|S
EFX|Equifax Inc.|IN|4|27|S
BR|Broadridge Financial Solutions, Inc.|IN|4|27|S
DOV|Dover Corporation|IN|1|25|S
HUBB|Hubbell Incorporated|IN|1|22|S
LDOS|Leidos Holdings, Inc.|IN|4|25|S
VLTO|Veralto Corporation|IN|1|25|S
FTV|Fortive Corporation|IN|1|17|S
BLDR|Builders FirstSource, Inc.|IN|3|13|S
MAS|Masco Corporation|IN|3|14|S
LII|Lennox International Inc.|IN|3|18|S
EXPD|Expeditors International of Washington, Inc.|IN|2|18|S
CHRW|C.H. Robinson Worldwide, Inc.|IN|2|16|S
JBHT|J.B. Hunt Transport Services, Inc.|IN|2|17|S
SNA|Snap-on Incorporated|IN|1|18|S
PNR|Pentair plc|IN|1|17|S
IEX|IDEX Corporation|IN|1|13|S
J|Jacobs Solutions Inc.|IN|4|17|S
TXT|Textron Inc.|IN|0|15|S
HII|Huntington Ingalls Industries, Inc.|IN|0|12|S
ALLE|Allegion plc|IN|3|14|S
AOS|A. O. Smith Corporation|IN|3|9|S
SWK|Stanley Black & Decker, Inc.|IN|1|11|S
NDSN|Nordson Corporation|IN|1|13|S
ROL|Rollins, Inc.|IN|4|28|S
EME|EMCOR Group, Inc.|IN|3|28|S
DAY|Dayforce, Inc.|IN|4|11|
PAYC|Paycom Software, Inc.|IN|4|10|
GNRC|Generac Holdings Inc.|IN|1|9|
SYM|Symbotic Inc.|IN|1|30|
SERV|Serve Robotics Inc.|IN|1|0.7|
RR|Richtech Robotics Inc.|IN|1|0.4|
PDYN|Palladyne AI Corp.|IN|1|0.3|
AVAV|AeroVironment, Inc.|IN|0|15|
KTOS|Kratos Defense & Security Solutions, Inc.|IN|0|12|
RCAT|Red Cat Holdings, Inc.|IN|0|0.8|
UMAC|Unusual Machines, Inc.|IN|0|0.4|
JOBY|Joby Aviation, Inc.|IN|0|12|
AIRO|AIRO Group Holdings, Inc.|IN|0|0.5|
ACHR|Archer Aviation Inc.|IN|0|6|A
RKLB|Rocket Lab Corporation|IN|0|25|A
LUNR|Intuitive Machines, Inc.|IN|0|1.8|
RDW|Redwire Corporation|IN|0|1.1|
SPCE|Virgin Galactic Holdings, Inc.|IN|0|0.2|
RUN|Sunrun Inc.|IN|3|4|
PLUG|Plug Power Inc.|IN|1|2.5|
BE|Bloom Energy Corporation|IN|1|24|
ARRY|Array Technologies, Inc.|IN|1|1.2|
NXT|Nextracker Inc.|IN|1|14|
FLNC|Fluence Energy, Inc.|IN|1|2.5|
EOSE|Eos Energy Enterprises, Inc.|IN|1|3.5|
AMPX|Amprius Technologies, Inc.|IN|1|1.3|
STEM|Stem, Inc.|IN|1|0.1|
CHPT|ChargePoint Holdings, Inc.|IN|1|0.2|
BLNK|Blink Charging Co.|IN|1|0.1|
WMS|Advanced Drainage Systems, Inc.|IN|3|11|
WTS|Watts Water Technologies, Inc.|IN|3|9|
FELE|Franklin Electric Co., Inc.|IN|1|4.3|
AGCO|AGCO Corporation|IN|1|8|
LNN|Lindsay Corporation|IN|1|1.3|
TITN|Titan Machinery Inc.|IN|4|0.4|
SMR|NuScale Power Corporation|IN|1|8|
NNE|NANO Nuclear Energy Inc.|IN|1|1.5|
BWXT|BWX Technologies, Inc.|IN|0|16|
DPRO|Draganfly Inc.|IN|0|0.1|F
EH|EHang Holdings Limited|IN|0|1|F
CNH|CNH Industrial N.V.|IN|1|13|F
WMT|Walmart Inc.|ST|3|850|SDV
COST|Costco Wholesale Corporation|ST|3|400|SQG
PG|The Procter & Gamble Company|ST|2|350|SDV
KO|The Coca-Cola Company|ST|1|300|SDV
PEP|PepsiCo, Inc.|ST|1|200|SQV
PM|Philip Morris International Inc.|ST|4|240|SV
MO|Altria Group, Inc.|ST|4|98|SV
MDLZ|Mondelez International, Inc.|ST|0|75|SQV
CL|Colgate-Palmolive Company|ST|2|64|SV
TGT|Target Corporation|ST|3|42|SV
KMB|Kimberly-Clark Corporation|ST|2|38|SV
KDP|Keurig Dr Pepper Inc.|ST|1|38|SQV
MNST|Monster Beverage Corporation|ST|1|66|SQ
GIS|General Mills, Inc.|ST|0|26|SV
KR|The Kroger Co.|ST|3|44|SV
SYY|Sysco Corporation|ST|3|37|SV
KHC|The Kraft Heinz Company|ST|0|30|SQV
HSY|The Hershey Company|ST|0|37|S
STZ|Constellation Brands, Inc.|ST|1|24|SV
CHD|Church & Dwight Co., Inc.|ST|2|21|S
ADM|Archer-Daniels-Midland Company|ST|0|29|SV
KVUE|Kenvue Inc.|ST|2|32|S
DG|Dollar General Corporation|ST|3|24|SV
DLTR|Dollar Tree, Inc.|ST|3|22|S
CLX|The Clorox Company|ST|2|14|S
MKC|McCormick & Company, Incorporated|ST|0|18|S
K|Kellanova|ST|0|28|S
TSN|Tyson Foods, Inc.|ST|0|20|SV
CAG|Conagra Brands, Inc.|ST|0|9|SV
SJM|The J. M. Smucker Company|ST|0|11|S
HRL|Hormel Foods Corporation|ST|0|13|S
TAP|Molson Coors Beverage Company|ST|1|9|S
BG|Bunge Global SA|ST|0|18|S
LW|Lamb Weston Holdings, Inc.|ST|0|8|
CPB|The Campbell's Company|ST|0|9|
EL|The Estée Lauder Companies Inc.|ST|2|32|S
CCEP|Coca-Cola Europacific Partners PLC|ST|1|40|QF
XOM|Exxon Mobil Corporation|EN|1|490|SV
CVX|Chevron Corporation|EN|1|300|SDV
COP|ConocoPhillips|EN|0|112|SV
EOG|EOG Resources, Inc.|EN|0|60|SV
WMB|The Williams Companies, Inc.|EN|3|73|S
SLB|SLB N.V.|EN|2|52|SV
KMI|Kinder Morgan, Inc.|EN|3|60|SV
OKE|ONEOK, Inc.|EN|3|45|SV
PSX|Phillips 66|EN|1|55|SV
MPC|Marathon Petroleum Corporation|EN|1|57|SV
VLO|Valero Energy Corporation|EN|1|52|SV
OXY|Occidental Petroleum Corporation|EN|0|42|SV
FANG|Diamondback Energy, Inc.|EN|0|43|SQV
HAL|Halliburton Company|EN|2|21|SV
BKR|Baker Hughes Company|EN|2|46|SQV
TRGP|Targa Resources Corp.|EN|3|37|S
EQT|EQT Corporation|EN|0|35|S
DVN|Devon Energy Corporation|EN|0|22|SV
CTRA|Coterra Energy Inc.|EN|0|20|SV
EXE|Expand Energy Corporation|EN|0|26|S
TPL|Texas Pacific Land Corporation|EN|0|21|S
APA|APA Corporation|EN|0|8|SV
LEU|Centrus Energy Corp.|EN|0|5|
UEC|Uranium Energy Corp.|EN|0|6|
UUUU|Energy Fuels Inc.|EN|0|4|
CCJ|Cameco Corporation|EN|0|35|F
NXE|NexGen Energy Ltd.|EN|0|5|F
NEE|NextEra Energy, Inc.|UT|0|170|SV
SO|The Southern Company|UT|0|100|SV
DUK|Duke Energy Corporation|UT|0|95|SV
CEG|Constellation Energy Corporation|UT|4|115|SQ
VST|Vistra Corp.|UT|4|62|S
AEP|American Electric Power Company, Inc.|UT|0|63|SQV
SRE|Sempra|UT|2|58|SV
D|Dominion Energy, Inc.|UT|2|51|SV
EXC|Exelon Corporation|UT|0|46|SQV
XEL|Xcel Energy Inc.|UT|0|47|SQV
PCG|PG&E Corporation|UT|0|34|SV
PEG|Public Service Enterprise Group Incorporated|UT|2|42|SV
ED|Consolidated Edison, Inc.|UT|2|36|SV
ETR|Entergy Corporation|UT|0|42|SV
WEC|WEC Energy Group, Inc.|UT|2|36|SV
AEE|Ameren Corporation|UT|2|28|SV
DTE|DTE Energy Company|UT|2|28|SV
PPL|PPL Corporation|UT|0|27|SV
ES|Eversource Energy|UT|0|25|SV
FE|FirstEnergy Corp.|UT|0|26|SV
CNP|CenterPoint Energy, Inc.|UT|2|25|SV
ATO|Atmos Energy Corporation|UT|1|27|SV
CMS|CMS Energy Corporation|UT|2|22|SV
NRG|NRG Energy, Inc.|UT|4|33|S
EIX|Edison International|UT|0|22|SV
NI|NiSource Inc.|UT|2|20|SV
LNT|Alliant Energy Corporation|UT|0|17|SV
EVRG|Evergy, Inc.|UT|0|17|SV
AWK|American Water Works Company, Inc.|UT|3|26|SV
PNW|Pinnacle West Capital Corporation|UT|0|11|SV
AES|The AES Corporation|UT|4|10|SV
WTRG|Essential Utilities, Inc.|UT|3|11|
OKLO|Oklo Inc.|UT|4|15|
BEP|Brookfield Renewable Partners L.P.|UT|4|8|F
PLD|Prologis, Inc.|RE|1|115|SV
WELL|Welltower Inc.|RE|3|120|S
AMT|American Tower Corporation|RE|3|85|SV
EQIX|Equinix, Inc.|RE|3|75|S
SPG|Simon Property Group, Inc.|RE|2|60|SV
O|Realty Income Corporation|RE|2|52|SV
PSA|Public Storage|RE|3|49|SV
DLR|Digital Realty Trust, Inc.|RE|3|56|S
CCI|Crown Castle Inc.|RE|3|41|SV
CBRE|CBRE Group, Inc.|RE|4|48|S
VICI|VICI Properties Inc.|RE|3|31|SV
EXR|Extra Space Storage Inc.|RE|3|29|SV
AVB|AvalonBay Communities, Inc.|RE|0|26|SV
EQR|Equity Residential|RE|0|24|SV
IRM|Iron Mountain Incorporated|RE|3|27|S
VTR|Ventas, Inc.|RE|3|35|SV
CSGP|CoStar Group, Inc.|RE|4|29|SQ
SBAC|SBA Communications Corporation|RE|3|21|S
WY|Weyerhaeuser Company|RE|3|17|SV
INVH|Invitation Homes Inc.|RE|0|18|SV
MAA|Mid-America Apartment Communities, Inc.|RE|0|16|SV
ESS|Essex Property Trust, Inc.|RE|0|17|SV
ARE|Alexandria Real Estate Equities, Inc.|RE|3|11|SV
KIM|Kimco Realty Corporation|RE|2|14|SV
REG|Regency Centers Corporation|RE|2|13|SV
HST|Host Hotels & Resorts, Inc.|RE|3|12|SV
UDR|UDR, Inc.|RE|0|12|SV
CPT|Camden Property Trust|RE|0|12|SV
DOC|Healthpeak Properties, Inc.|RE|3|13|SV
BXP|BXP, Inc.|RE|3|12|SV
FRT|Federal Realty Investment Trust|RE|2|9|SV
LIN|Linde plc|MA|0|200|SQ
SHW|The Sherwin-Williams Company|MA|0|85|SD
ECL|Ecolab Inc.|MA|0|75|S
APD|Air Products and Chemicals, Inc.|MA|0|57|SV
FCX|Freeport-McMoRan Inc.|MA|1|62|SV
NEM|Newmont Corporation|MA|4|95|SV
CTVA|Corteva, Inc.|MA|0|45|S
DD|DuPont de Nemours, Inc.|MA|0|17|SV
NUE|Nucor Corporation|MA|1|35|SV
VMC|Vulcan Materials Company|MA|2|38|S
MLM|Martin Marietta Materials, Inc.|MA|2|37|S
DOW|Dow Inc.|MA|0|16|SV
PPG|PPG Industries, Inc.|MA|0|23|SV
IFF|International Flavors & Fragrances Inc.|MA|0|17|SV
LYB|LyondellBasell Industries N.V.|MA|0|15|SV
SW|Smurfit Westrock plc|MA|3|19|SV
PKG|Packaging Corporation of America|MA|3|18|SV
IP|International Paper Company|MA|3|21|SV
BALL|Ball Corporation|MA|3|14|SV
AMCR|Amcor plc|MA|3|19|SV
AVY|Avery Dennison Corporation|MA|3|14|S
STLD|Steel Dynamics, Inc.|MA|1|23|SV
CF|CF Industries Holdings, Inc.|MA|0|13|SV
ALB|Albemarle Corporation|MA|0|13|S
MOS|The Mosaic Company|MA|0|8|SV
EMN|Eastman Chemical Company|MA|0|7|SV
RGLD|Royal Gold, Inc.|MA|4|15|
HL|Hecla Mining Company|MA|4|10|
CDE|Coeur Mining, Inc.|MA|4|10|
SSRM|SSR Mining Inc.|MA|4|4.5|
FMC|FMC Corporation|MA|0|2|
MP|MP Materials Corp.|MA|1|11|
USAR|USA Rare Earth, Inc.|MA|1|1.8|
UAMY|United States Antimony Corporation|MA|1|0.8|
NB|NioCorp Developments Ltd.|MA|1|0.9|
TROX|Tronox Holdings plc|MA|0|0.8|
GOLD|Barrick Mining Corporation|MA|4|70|F
AEM|Agnico Eagle Mines Limited|MA|4|85|F
WPM|Wheaton Precious Metals Corp.|MA|4|50|F
FNV|Franco-Nevada Corporation|MA|4|38|F
KGC|Kinross Gold Corporation|MA|4|32|F
AU|AngloGold Ashanti plc|MA|4|40|F
GFI|Gold Fields Limited|MA|4|35|F
AGI|Alamos Gold Inc.|MA|4|14|F
HMY|Harmony Gold Mining Company Limited|MA|4|10|F
EGO|Eldorado Gold Corporation|MA|4|6|F
PAAS|Pan American Silver Corp.|MA|4|15|F
AG|First Majestic Silver Corp.|MA|4|6|F
EXK|Endeavour Silver Corp.|MA|4|2|F
MAG|MAG Silver Corp.|MA|4|2|F
FSM|Fortuna Mining Corp.|MA|4|2.5|F
SVM|Silvercorp Metals Inc.|MA|4|1.3|F
SQM|Sociedad Química y Minera de Chile S.A.|MA|0|12|F
LAC|Lithium Americas Corp.|MA|1|1.5|F
NTR|Nutrien Ltd.|MA|0|28|F
TMC|TMC the metals company Inc.|MA|1|2.5|F
CRML|Critical Metals Corp.|MA|1|1|F
IPX|IperionX Limited|MA|1|1.2|F
"""


@dataclass(frozen=True, slots=True)
class _RealStock:
    ticker: str
    name: str
    sector: int
    industry: str
    cap_billions: float
    flags: str


def _parse_real_stocks(text: str) -> tuple[_RealStock, ...]:
    stocks = []
    for line in text.strip().splitlines():
        ticker, name, code, industry, cap, flags = line.split("|")
        sector = _SECTOR_BY_CODE[code]
        stocks.append(
            _RealStock(
                ticker,
                name,
                sector,
                _SECTORS[sector].industries[int(industry)],
                float(cap),
                flags,
            )
        )
    return tuple(stocks)


_REAL_STOCKS = _parse_real_stocks(_REAL_STOCKS_TEXT)

# --- reference data: ETFs and themes ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Etf:
    ticker: str
    name: str
    holdings: int
    has_threshold: bool
    sector: str | None = None  # sector code of a Select Sector SPDR


_ETFS: tuple[_Etf, ...] = (
    _Etf("VTI", "Vanguard Total Stock Market ETF", 3508, True),
    _Etf("IWV", "iShares Russell 3000 ETF", 2564, True),
    _Etf("IWM", "iShares Russell 2000 ETF", 1943, True),
    _Etf("IWB", "iShares Russell 1000 ETF", 1009, True),
    _Etf("VOO", "Vanguard S&P 500 ETF", 505, True),
    _Etf("SPY", "SPDR S&P 500 ETF Trust", 504, True),
    _Etf("MDY", "SPDR S&P MidCap 400 ETF Trust", 401, True),
    _Etf("VTV", "Vanguard Value ETF", 316, True),
    _Etf("SCHG", "Schwab U.S. Large-Cap Growth ETF", 195, True),
    _Etf("VUG", "Vanguard Growth ETF", 160, True),
    _Etf("QQQ", "Invesco QQQ Trust, Series 1", 102, False),
    _Etf("XLI", "Industrial Select Sector SPDR Fund", 75, True, "IN"),
    _Etf("XLK", "Technology Select Sector SPDR Fund", 72, True, "IT"),
    _Etf("XLV", "Health Care Select Sector SPDR Fund", 60, True, "HC"),
    _Etf("XLF", "Financial Select Sector SPDR Fund", 60, True, "FN"),
    _Etf("XLY", "Consumer Discretionary Select Sector SPDR Fund", 55, True, "CD"),
    _Etf("ARKK", "ARK Innovation ETF", 46, False),
    _Etf("XLP", "Consumer Staples Select Sector SPDR Fund", 33, True, "ST"),
    _Etf("XLRE", "Real Estate Select Sector SPDR Fund", 30, True, "RE"),
    _Etf("XLB", "Materials Select Sector SPDR Fund", 30, True, "MA"),
    _Etf("XLU", "Utilities Select Sector SPDR Fund", 30, True, "UT"),
    _Etf("DIA", "SPDR Dow Jones Industrial Average ETF Trust", 30, False),
    _Etf("XLE", "Energy Select Sector SPDR Fund", 25, True, "EN"),
    _Etf("XLC", "Communication Services Select Sector SPDR Fund", 25, True, "CM"),
)

_CRYPTO_ETFS: tuple[tuple[str, str], ...] = (
    ("IBIT", "iShares Bitcoin Trust ETF"),
    ("FBTC", "Fidelity Wise Origin Bitcoin Fund"),
    ("GBTC", "Grayscale Bitcoin Trust ETF"),
    ("ARKB", "ARK 21Shares Bitcoin ETF"),
    ("BITB", "Bitwise Bitcoin ETF"),
    ("BITO", "ProShares Bitcoin Strategy ETF"),
    ("WGMI", "CoinShares Bitcoin Mining ETF"),
    ("BKCH", "Global X Blockchain ETF"),
)
_RETIRED_TICKERS = ("FB", "TWTR", "ATVI", "SQ")  # still listed by the oldest legacy rows


@dataclass(frozen=True, slots=True)
class _Theme:
    key: str
    name: str
    symbols: tuple[str, ...]
    description: str
    criteria: str
    related: tuple[str, ...]


def _theme(
    key: str, name: str, symbols: str, description: str, criteria: str, related: str
) -> _Theme:
    return _Theme(key, name, tuple(symbols.split()), description, criteria, tuple(related.split()))


_THEMES: tuple[_Theme, ...] = (
    _theme(
        "crypto_miners",
        "Bitcoin & Cryptocurrency Miners",
        "MARA RIOT CLSK HUT CIFR WULF BITF IREN BTDR",
        "Companies mining bitcoin and other proof-of-work cryptocurrencies at industrial scale.",
        "Majority of revenue from cryptocurrency mining or hosting; US-listed.",
        "theme_crypto",
    ),
    _theme(
        "robotics_automation",
        "Robotics & Automation",
        "ISRG ROK TER SYM ZBRA CGNX NVDA EMR PATH HON PTC IRBT SERV RR TSLA PDYN NDSN",
        "Industrial robots, surgical robotics, machine vision and automation software.",
        "Robotics or automation products are a core revenue line.",
        "ai_machine_learning autonomous_vehicles",
    ),
    _theme(
        "drones_uav",
        "Drones & Unmanned Aerial Vehicles",
        "AVAV KTOS RCAT UMAC ONDS DPRO NOC LMT ACHR JOBY EH AIRO TXT",
        "Military and commercial drones, eVTOL aircraft and their components.",
        "Designs, builds or operates unmanned or electric vertical take-off aircraft.",
        "space_technology robotics_automation",
    ),
    _theme(
        "gold_miners",
        "Gold Miners",
        "NEM GOLD AEM WPM FNV KGC AU GFI AGI RGLD HMY EGO",
        "Gold producers and royalty and streaming companies.",
        "More than half of revenue from gold production or gold royalties.",
        "silver_miners rare_earth_minerals",
    ),
    _theme(
        "silver_miners",
        "Silver Miners",
        "PAAS AG HL CDE SSRM EXK MAG FSM SVM",
        "Primary silver producers and developers.",
        "Silver is the largest share of production or reserves.",
        "gold_miners",
    ),
    _theme(
        "space_technology",
        "Space Technology",
        "RKLB ASTS LUNR PL SPCE RDW BKSY IRDM LMT NOC BA",
        "Launch providers, satellite operators, space infrastructure and earth observation.",
        "Space systems or services are a material revenue line.",
        "drones_uav five_g_infrastructure",
    ),
    _theme(
        "clean_energy",
        "Clean Energy",
        "FSLR ENPH SEDG RUN NEE BEP PLUG BE ARRY NXT CSIQ AES",
        "Solar, wind, hydrogen and fuel cell equipment makers and renewable power producers.",
        "Renewable generation or clean energy equipment is the core business.",
        "battery_storage nuclear_energy",
    ),
    _theme(
        "battery_storage",
        "Battery & Energy Storage",
        "ALB ENVX QS FLNC EOSE SLDP TSLA SQM LAC AMPX STEM",
        "Battery cells, grid-scale storage systems and battery materials.",
        "Energy storage products or battery materials are a core revenue line.",
        "electric_vehicles clean_energy rare_earth_minerals",
    ),
    _theme(
        "ai_machine_learning",
        "Artificial Intelligence & Machine Learning",
        "NVDA MSFT GOOGL META AMD PLTR AI SOUN BBAI SNOW CRWV AVGO TSM ARM",
        "AI accelerators, AI infrastructure and AI software platforms.",
        "AI chips, AI cloud capacity or AI software drive the investment case.",
        "cloud_computing quantum_computing",
    ),
    _theme(
        "quantum_computing",
        "Quantum Computing",
        "IONQ RGTI QBTS QUBT IBM GOOGL ARQQ",
        "Quantum hardware, quantum cloud services and post-quantum cryptography.",
        "Builds quantum computers or sells quantum computing services.",
        "ai_machine_learning cybersecurity",
    ),
    _theme(
        "genomics_biotech",
        "Genomics & Biotechnology",
        "ILMN CRSP NTLA BEAM TXG PACB TWST EDIT VRTX REGN",
        "Gene editing, sequencing and genomic medicine.",
        "Genomic tools or gene-based therapies are the core business.",
        "ai_machine_learning",
    ),
    _theme(
        "cloud_computing",
        "Cloud Computing",
        "AMZN MSFT GOOGL ORCL CRM NOW SNOW DDOG NET MDB ZS OKTA",
        "Public cloud platforms and cloud-native software.",
        "Most revenue from cloud infrastructure or subscription software.",
        "cybersecurity ai_machine_learning",
    ),
    _theme(
        "cybersecurity",
        "Cybersecurity",
        "CRWD PANW FTNT ZS OKTA NET CYBR CHKP S TENB QLYS",
        "Endpoint, network, identity and cloud security vendors.",
        "Security products are the core business.",
        "cloud_computing",
    ),
    _theme(
        "five_g_infrastructure",
        "5G Infrastructure",
        "QCOM ERIC NOK AMT CCI SBAC KEYS ANET CSCO MRVL",
        "Network equipment, towers, chips and test equipment for 5G networks.",
        "Sells equipment, chips or tower capacity to wireless carriers.",
        "space_technology",
    ),
    _theme(
        "electric_vehicles",
        "Electric Vehicles",
        "TSLA RIVN LCID NIO XPEV LI PSNY GM F CHPT BLNK QS",
        "Electric vehicle makers and charging networks.",
        "Sells electric vehicles or EV charging at scale.",
        "battery_storage autonomous_vehicles",
    ),
    _theme(
        "autonomous_vehicles",
        "Autonomous Vehicles",
        "TSLA GOOGL NVDA MBLY UBER LAZR INVZ OUST AUR PONY",
        "Self-driving software, lidar and autonomous driving chips.",
        "Develops or deploys autonomous driving technology.",
        "electric_vehicles ai_machine_learning",
    ),
    _theme(
        "water_technology",
        "Water Technology",
        "AWK XYL WTRG WMS PNR ECL WTS VLTO FELE",
        "Water utilities, treatment, pumps and infrastructure.",
        "Water supply, treatment or flow control is the core business.",
        "agriculture_technology",
    ),
    _theme(
        "agriculture_technology",
        "Agriculture Technology",
        "DE CTVA AGCO CNH FMC MOS CF NTR LNN TITN",
        "Farm machinery, precision agriculture, seeds and crop nutrients.",
        "Sells equipment, seeds or inputs to farmers.",
        "water_technology",
    ),
    _theme(
        "nuclear_energy",
        "Nuclear Energy",
        "CCJ CEG VST OKLO SMR NNE LEU BWXT UEC NXE",
        "Uranium miners, fuel enrichment, reactor builders and nuclear power operators.",
        "Uranium, nuclear fuel, reactors or nuclear generation are the core business.",
        "clean_energy",
    ),
    _theme(
        "rare_earth_minerals",
        "Rare Earth & Critical Minerals",
        "MP USAR UAMY TMC NB CRML UUUU IPX TROX ALB",
        "Miners and processors of rare earths and other critical minerals.",
        "Produces or develops rare earth or critical mineral supply outside China.",
        "battery_storage gold_miners",
    ),
)

# Figures of docs/design.md §1, checked against the data above when a base block is built.
EXPECTED_ETF_HOLDINGS: dict[str, int] = {e.ticker: e.holdings for e in _ETFS}
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
SECTOR_KEYS: tuple[str, ...] = tuple(s.key for s in _SECTORS)
SECTOR_NAMES: dict[str, str] = {s.key: s.name for s in _SECTORS}

# --- generation: the base block -----------------------------------------------------------------

_SP500_SIZE = 505
_IWB_SIZE = 1009
_IWM_SIZE = 1943
_SPARE_SP500_SEATS = ("IT", "HC", "FN", "IN", "CD")  # who gets S&P seats beyond the ETF needs
_GROWTH_SECTORS_FOR_QQQ = ("IT", "HC", "CD", "CM")
_ARKK_SECTORS = ("IT", "HC", "CM", "FN")
# (rank, market cap in dollars) of US-listed stocks, interpolated log-linearly
_CAP_ANCHORS: tuple[tuple[int, float], ...] = (
    (0, 4.4e12),
    (5, 1.6e12),
    (10, 8.5e11),
    (25, 3.0e11),
    (50, 1.7e11),
    (100, 9.0e10),
    (200, 4.8e10),
    (300, 3.2e10),
    (500, 1.8e10),
    (750, 9.5e9),
    (1000, 6.0e9),
    (1500, 2.8e9),
    (2000, 1.3e9),
    (2500, 6.0e8),
    (3000, 2.6e8),
    (3400, 1.0e8),
)
_SMALLEST_CAP = 1.5e7
_LARGEST_GENERATED_CAP = 4.0e10  # the largest US companies are all real tickers
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BASE_TICKER_LENGTHS = ((1, 2, 3, 4, 5), (1, 4, 30, 60, 5))
_COPY_TICKER_LENGTHS = ((4, 5), (40, 60))
_ETF_COPY_TICKER_LENGTHS = ((3, 4), (30, 70))
_NAME_STEMS = (
    "Apex", "Summit", "Pinnacle", "Harbor", "Cedar", "Granite", "Meridian", "Northstar",
    "Bluewater", "Redwood", "Silverline", "Ironbridge", "Clearview", "Evergreen", "Lakeshore",
    "Westfield", "Crescent", "Horizon", "Keystone", "Liberty", "Pioneer", "Sterling", "Trident",
    "Atlas", "Beacon", "Cobalt", "Falcon", "Gateway", "Highland", "Juniper", "Kestrel", "Lumen",
    "Mosaic", "Orion", "Prairie", "Ridgeway", "Sequoia", "Tidewater", "Willow", "Zenith",
    "Aurora", "Bayview", "Canyon", "Driftwood", "Eastgate", "Fairmont", "Glacier", "Hudson",
    "Ironwood", "Jasper", "Kingsley", "Lighthouse", "Monarch", "Newport", "Oakridge", "Pacific",
    "Quarry", "Riverbend", "Stonegate", "Tamarack", "Union", "Valley", "Westbrook", "Yardley",
)  # fmt: skip
_NAME_SUFFIXES = (
    "Inc.", "Corporation", "Corp.", "Holdings, Inc.", "Group, Inc.", "Co.", "Incorporated",
    "Holdings Corp.", "Ltd.", "plc",
)  # fmt: skip


@dataclass(frozen=True)
class _Base:
    """The first block: real tickers plus generated ones, and who holds what (by index)."""

    tickers: list[str]
    names: list[str]
    sectors: list[int]
    industries: list[str]
    caps: list[int]
    foreign: list[bool]
    us_by_cap: list[int]
    holdings: list[list[int]]  # aligned with _ETFS, each ordered by market cap
    theme_members: list[list[int]]  # aligned with _THEMES
    etfs_of: list[list[int]]  # per stock: indexes into _ETFS, ascending ticker order
    themes_of: list[list[int]]  # per stock: indexes into _THEMES


def _rng(seed: int, stream: str) -> random.Random:
    """A private generator per stream (string seeds hash the same in every process)."""
    return random.Random(f"cache-entries-sample/{seed}/{stream}")  # noqa: S311 (not crypto)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"sample data invariant broken: {message}")


def _cap_curve(n: int) -> list[float]:
    """Market caps of n US stocks by rank, descending."""
    anchors = [a for a in _CAP_ANCHORS if a[0] < n - 1] + [(n - 1, _SMALLEST_CAP)]
    curve = []
    segment = 0
    for rank in range(n):
        while anchors[segment + 1][0] < rank:
            segment += 1
        (r0, c0), (r1, c1) = anchors[segment], anchors[segment + 1]
        fraction = (rank - r0) / (r1 - r0)
        curve.append(math.exp(math.log(c0) + fraction * (math.log(c1) - math.log(c0))))
    return curve


def _unclaimed_caps(curve: list[float], real_caps: Iterable[float]) -> list[float]:
    """The curve minus, for each real stock, the free slot nearest its market cap (descending)."""
    ascending = curve[::-1]
    claimed = [False] * len(ascending)
    for cap in sorted(real_caps, reverse=True):
        here = bisect.bisect_left(ascending, cap)
        low, high = here - 1, here
        while low >= 0 and claimed[low]:
            low -= 1
        while high < len(ascending) and claimed[high]:
            high += 1
        _check(low >= 0 or high < len(ascending), "more real stocks than universe slots")
        take_low = high >= len(ascending) or (
            low >= 0 and math.log(cap / ascending[low]) < math.log(ascending[high] / cap)
        )
        claimed[low if take_low else high] = True
    return [c for c, taken in zip(ascending, claimed, strict=True) if not taken][::-1]


def _round_cap(value: float) -> int:
    return max(1_000_000, int(value) // 100_000 * 100_000)


def _new_tickers(
    rng: random.Random,
    count: int,
    taken: set[str],
    lengths: tuple[tuple[int, ...], tuple[int, ...]],
) -> list[str]:
    """count new upper-case tickers not in taken (which they are added to)."""
    sizes, weights = lengths
    cumulative = []
    total = 0
    for weight in weights:
        total += weight
        cumulative.append(total)
    choices = rng.choices
    out: list[str] = []
    while len(out) < count:
        size = sizes[bisect.bisect_right(cumulative, rng.random() * total)]
        ticker = "".join(choices(_LETTERS, k=size))
        if ticker not in taken:
            taken.add(ticker)
            out.append(ticker)
    return out


def _company_name(rng: random.Random, sector: int) -> str:
    words = _SECTORS[sector].words
    return (
        f"{_NAME_STEMS[int(rng.random() * len(_NAME_STEMS))]} "
        f"{words[int(rng.random() * len(words))]} "
        f"{_NAME_SUFFIXES[int(rng.random() * len(_NAME_SUFFIXES))]}"
    )


def _reserved_tickers() -> set[str]:
    return (
        {s.ticker for s in _REAL_STOCKS}
        | {e.ticker for e in _ETFS}
        | {t for t, _ in _CRYPTO_ETFS}
        | set(_RETIRED_TICKERS)
    )


@functools.lru_cache(maxsize=4)
def _build_base(seed: int) -> _Base:
    rng = _rng(seed, "base")
    reals = _REAL_STOCKS
    n_real = len(reals)
    flags = [s.flags for s in reals]
    foreign = ["F" in f for f in flags]
    n_us = UNIVERSE_SIZE - sum(foreign)
    free_caps = _unclaimed_caps(
        _cap_curve(n_us), (s.cap_billions * 1e9 for s in reals if "F" not in s.flags)
    )
    n_gen = len(free_caps)
    n = n_real + n_gen

    tickers = [s.ticker for s in reals] + _new_tickers(
        rng, n_gen, _reserved_tickers(), _BASE_TICKER_LENGTHS
    )
    sectors = [s.sector for s in reals] + [-1] * n_gen
    industries = [s.industry for s in reals] + [""] * n_gen
    caps = [_round_cap(s.cap_billions * 1e9 * rng.uniform(0.99, 1.01)) for s in reals]
    caps += [
        _round_cap(min(c, _LARGEST_GENERATED_CAP) * rng.uniform(0.97, 1.03)) for c in free_caps
    ]
    foreign += [False] * n_gen
    flags += [""] * n_gen

    by_cap = sorted(range(n), key=lambda i: (-caps[i], tickers[i]))
    position = [0] * n
    for place, i in enumerate(by_cap):
        position[i] = place
    us_by_cap = [i for i in by_cap if not foreign[i]]
    generated_by_cap = [i for i in us_by_cap if i >= n_real]

    def ordered(indexes: Iterable[int]) -> list[int]:
        return sorted(indexes, key=position.__getitem__)

    # S&P 500: the real members, topped up per sector with the largest generated stocks so that
    # every Select Sector SPDR can be filled from SPY.
    sector_etfs = {_SECTOR_BY_CODE[e.sector]: e for e in _ETFS if e.sector}
    real_sp = [i for i in range(n_real) if "S" in flags[i]]
    real_sp_count = Counter(sectors[i] for i in real_sp)
    quota = {s: max(real_sp_count[s], sector_etfs[s].holdings) for s in range(len(_SECTORS))}
    spare = _SP500_SIZE - sum(quota.values())
    _check(spare >= 1, f"the real S&P 500 members leave {spare} spare seats")
    for step in range(spare):
        quota[_SECTOR_BY_CODE[_SPARE_SP500_SEATS[step % len(_SPARE_SP500_SEATS)]]] += 1
    deficits = [quota[s] - real_sp_count[s] for s in range(len(_SECTORS))]
    fillers = generated_by_cap[: sum(deficits)]
    for i in fillers:
        sector = rng.choices(range(len(_SECTORS)), weights=deficits)[0]
        sectors[i] = sector
        deficits[sector] -= 1
    weights = [s.weight for s in _SECTORS]
    for i in range(n_real, n):
        if sectors[i] < 0:
            sectors[i] = rng.choices(range(len(_SECTORS)), weights=weights)[0]
        industries[i] = rng.choice(_SECTORS[sectors[i]].industries)
    names = [s.name for s in reals] + [_company_name(rng, sectors[i]) for i in range(n_real, n)]
    growth = [False] * n
    for i in us_by_cap:
        growth[i] = "G" in flags[i] or (
            "V" not in flags[i] and rng.random() < _SECTORS[sectors[i]].growth_share
        )

    sp500 = ordered(real_sp + fillers)
    sp_set = set(sp500)
    iwb = us_by_cap[:_IWB_SIZE]
    _check(sp_set <= set(iwb), "an S&P 500 member is not in the Russell 1000")
    iwm = us_by_cap[_IWB_SIZE : _IWB_SIZE + _IWM_SIZE]
    slack = [i for i in sp500 if quota[sectors[i]] > sector_etfs[sectors[i]].holdings]
    spy = [i for i in sp500 if i != slack[-1]]
    iwv = iwb + ordered(rng.sample(iwm, EXPECTED_ETF_HOLDINGS["IWV"] - _IWB_SIZE))
    iwv_set = set(iwv)
    outside = [i for i in iwm if i not in iwv_set and i >= n_real]
    not_in_vti = set(rng.sample(outside, n_us - EXPECTED_ETF_HOLDINGS["VTI"]))
    mdy_pool = [i for i in us_by_cap[300:1500] if i not in sp_set]
    real_q = [i for i in range(n_real) if "Q" in flags[i]]
    q_codes = {_SECTOR_BY_CODE[c] for c in _GROWTH_SECTORS_FOR_QQQ}
    q_pool = [i for i in iwb if i >= n_real and i not in sp_set and sectors[i] in q_codes]
    real_a = [i for i in range(n_real) if "A" in flags[i]]
    a_codes = {_SECTOR_BY_CODE[c] for c in _ARKK_SECTORS}
    a_pool = [i for i in us_by_cap[150:2500] if i >= n_real and sectors[i] in a_codes]

    lists: dict[str, list[int]] = {
        "VTI": [i for i in us_by_cap if i not in not_in_vti],
        "IWV": iwv,
        "IWM": iwm,
        "IWB": iwb,
        "VOO": sp500,
        "SPY": spy,
        "MDY": ordered(rng.sample(mdy_pool, EXPECTED_ETF_HOLDINGS["MDY"])),
        "VTV": [i for i in iwb if not growth[i]][: EXPECTED_ETF_HOLDINGS["VTV"]],
        "SCHG": [i for i in iwb if growth[i]][: EXPECTED_ETF_HOLDINGS["SCHG"]],
        "VUG": [i for i in iwb if growth[i]][: EXPECTED_ETF_HOLDINGS["VUG"]],
        "QQQ": ordered(real_q + rng.sample(q_pool, EXPECTED_ETF_HOLDINGS["QQQ"] - len(real_q))),
        "ARKK": ordered(real_a + rng.sample(a_pool, EXPECTED_ETF_HOLDINGS["ARKK"] - len(real_a))),
        "DIA": ordered(i for i in range(n_real) if "D" in flags[i]),
    }
    for sector, etf in sector_etfs.items():
        lists[etf.ticker] = [i for i in spy if sectors[i] == sector][: etf.holdings]
    holdings = [lists[e.ticker] for e in _ETFS]

    index_of = {t: i for i, t in enumerate(tickers)}
    theme_members = [[index_of[t] for t in theme.symbols] for theme in _THEMES]

    etf_order = sorted(range(len(_ETFS)), key=lambda e: _ETFS[e].ticker)
    etfs_of: list[list[int]] = [[] for _ in range(n)]
    for e in etf_order:
        for i in holdings[e]:
            etfs_of[i].append(e)
    themes_of: list[list[int]] = [[] for _ in range(n)]
    for t, members in enumerate(theme_members):
        for i in members:
            themes_of[i].append(t)

    base = _Base(
        tickers,
        names,
        sectors,
        industries,
        caps,
        foreign,
        us_by_cap,
        holdings,
        theme_members,
        etfs_of,
        themes_of,
    )
    _check_base(base)
    return base


def _check_base(base: _Base) -> None:
    for etf, held in zip(_ETFS, base.holdings, strict=True):
        _check(len(held) == etf.holdings, f"{etf.ticker} holds {len(held)}, not {etf.holdings}")
        _check(len(set(held)) == len(held), f"{etf.ticker} holds a symbol twice")
    for theme, members in zip(_THEMES, base.theme_members, strict=True):
        expected = EXPECTED_THEME_SIZES[theme.key]
        _check(len(set(members)) == expected, f"{theme.key} has {len(members)} members")
    _check(len(base.tickers) == UNIVERSE_SIZE, f"universe of {len(base.tickers)} symbols")
    _check(len(set(base.tickers)) == UNIVERSE_SIZE, "a ticker is used twice")
    _check(all(base.etfs_of[i] or base.themes_of[i] for i in range(UNIVERSE_SIZE)), "orphan")
    aapl = base.tickers.index("AAPL")
    held_by = {_ETFS[e].ticker for e in base.etfs_of[aapl]}
    _check(held_by == set(AAPL_ETFS), f"AAPL is held by {sorted(held_by)}")


AAPL_ETFS: tuple[str, ...] = ("DIA", "IWB", "IWV", "QQQ", "SCHG", "SPY", "VOO", "VTI", "VUG", "XLK")

# --- generation: entries ------------------------------------------------------------------------

# (type, name, key, value, description, (created_at, updated_at) or None, environment or None)
_Draft = tuple[str, str, str, Any, str | None, tuple[datetime, datetime | None] | None, str | None]


def _stamps(index: int) -> tuple[datetime, datetime | None]:
    """Deterministic timestamps of the index-th row; updated_at is NULL on every seventh row."""
    created = BASE_TIME - timedelta(days=120 + index % 61, seconds=(index * 7_919) % 86_400)
    if index % 7 == 6:
        return created, None
    return created, BASE_TIME - timedelta(seconds=(index * 104_729) % 259_200)


def _sector_drafts(base: _Base, scale: int) -> list[_Draft]:
    counts = Counter(base.sectors)
    drafts: list[_Draft] = []
    for number, sector in enumerate(_SECTORS):
        leaders = [base.tickers[i] for i in base.us_by_cap if base.sectors[i] == number][:5]
        value = {
            "industries": list(sector.industries),
            "representative_stocks": leaders,
            "description": sector.description,
            "stock_count": counts[number] * scale,
            "last_updated": LAST_UPDATED,
        }
        drafts.append(
            (
                "sector_industry_map",
                sector.name,
                sector.key,
                value,
                f"GICS sector {sector.name}",
                None,
                None,
            )
        )
    return drafts


def _etf_draft(etf: _Etf, ticker: str, name: str, holdings: list[str]) -> _Draft:
    value: dict[str, Any] = {"holdings": holdings, "total_holdings": len(holdings)}
    if etf.has_threshold:
        value["market_cap_threshold"] = MARKET_CAP_THRESHOLD
    value["last_updated"] = LAST_UPDATED
    value["data_source"] = f"{ticker.lower()}_holdings.csv"
    description = f"Holdings of {ticker} ({len(holdings)} symbols)"
    return ("etf_holdings", name, ticker, value, description, None, None)


def _theme_draft(theme: _Theme, key: str, name: str, symbols: list[str], suffix: str) -> _Draft:
    value = {
        "description": theme.description,
        "symbols": symbols,
        "selection_criteria": theme.criteria,
        "related_themes": [
            f"{r}{suffix}" if r in EXPECTED_THEME_SIZES else r for r in theme.related
        ],
        "last_updated": LAST_UPDATED,
    }
    return ("theme_definition", name, key, value, f"Investment theme: {name}", None, None)


def _stock_drafts(
    tickers: list[str],
    names: list[str],
    caps: list[int],
    base: _Base,
    etf_keys: list[str],
    theme_keys: list[str],
) -> list[_Draft]:
    sectors = [s.name for s in _SECTORS]
    drafts: list[_Draft] = []
    for i in sorted(range(len(tickers)), key=tickers.__getitem__):
        value = {
            "market_cap": caps[i],
            "sector": sectors[base.sectors[i]],
            "industry": base.industries[i],
            "member_of_etfs": [etf_keys[e] for e in base.etfs_of[i]],
            "member_of_themes": [theme_keys[t] for t in base.themes_of[i]],
            "is_validated": True,
        }
        drafts.append(("stock_metadata", names[i], tickers[i], value, None, None, None))
    return drafts


def _universe_drafts(base: _Base) -> list[_Draft]:
    t = base.tickers
    held = dict(zip((e.ticker for e in _ETFS), base.holdings, strict=True))
    top = [t[i] for i in base.us_by_cap[:50]]
    crypto = [*_THEMES[0].symbols, "COIN", "MSTR", "HOOD", "CRCL"]
    legacy_leaders = [*top[:22], "FB", "TWTR", "ATVI"]
    etf_names = {e.ticker: e.name for e in _ETFS}
    broad = ("VTI", "IWV", "IWB", "VOO", "SPY")
    sector_etfs = [e.ticker for e in _ETFS if e.sector]
    legacy_stamps = (
        datetime(2024, 1, 15, 14, 30, tzinfo=UTC),
        datetime(2024, 6, 28, 9, 0, tzinfo=UTC),
    )
    current_stamps = (datetime(2025, 3, 3, 8, 0, tzinfo=UTC), BASE_TIME)
    return [
        ("stock_universe", "S&P 500", "index_sp500", [t[i] for i in held["VOO"]],
         "S&P 500 constituents", None, None),
        ("stock_universe", "Market Leaders", "market_leaders", {"symbols": top, "count": len(top)},
         "Largest 50 US-listed companies by market cap", current_stamps, None),
        ("stock_universe", "Market Leaders (legacy)", "market_leaders",
         {"stocks": [{"ticker": s} for s in legacy_leaders]},
         "Market leaders list from the 2024 screener", legacy_stamps, None),
        ("stock_universe", "Crypto Stocks", "theme_crypto",
         {"stocks": [{"ticker": s} for s in crypto]}, "Crypto-exposed equities", None, None),
        ("stock_universe", "Nasdaq-100", "index_nasdaq100", [t[i] for i in held["QQQ"]],
         "Nasdaq-100 constituents", None, None),
        ("stock_universe", "Dow Jones Industrial Average", "index_dow30",
         {"symbols": [t[i] for i in held["DIA"]], "count": len(held["DIA"])},
         "Dow 30 constituents", None, None),
        ("etf_universe", "Tracked ETFs", "tracked_etfs", [e.ticker for e in _ETFS],
         "ETFs whose holdings are loaded", None, None),
        ("etf_universe", "Sector ETFs", "sector_etfs",
         {"symbols": sector_etfs, "count": len(sector_etfs)}, "Select Sector SPDR funds",
         None, None),
        ("etf_universe", "Crypto ETFs", "theme_crypto",
         {"etfs": [{"ticker": k, "name": v} for k, v in _CRYPTO_ETFS]},
         "Spot bitcoin and crypto-equity ETFs", None, None),
        ("etf_universe", "Broad Market ETFs", "broad_market",
         {"etfs": [{"ticker": k, "name": etf_names[k]} for k in broad]},
         "Total-market and large-cap index funds", None, None),
    ]  # fmt: skip


def _unrelated_drafts() -> list[_Draft]:
    return [
        ("cache_config", "Cache TTL", "ttl_seconds",
         {"etf_holdings": 86_400, "stock_metadata": 604_800, "theme_definition": 2_592_000},
         "Time-to-live per cache type", None, None),
        ("cache_config", "Refresh Schedule", "refresh_schedule",
         {"cron": "0 6 * * 1-5", "timezone": "America/New_York", "enabled": True},
         None, None, None),
        ("app_settings", "UI Defaults", "ui_defaults",
         {"theme": "dark", "page_size": 50, "default_universe": "index_sp500"}, None, None, None),
        ("app_settings", "Feature Flags", "feature_flags",
         {"use_relational_groups": False, "show_theme_badges": True}, None, None, None),
        ("stock_stats", "Apple Inc.", "AAPL",
         {"avg_volume_30d": 52_400_000, "beta": 1.21, "as_of": "2025-12-04"}, None, None, None),
        ("stock_stats", "Microsoft Corporation", "MSFT",
         {"avg_volume_30d": 21_700_000, "beta": 0.9, "as_of": "2025-12-04"}, None, None, None),
        ("stock_stats", "NVIDIA Corporation", "NVDA",
         {"avg_volume_30d": 189_300_000, "beta": 1.68, "as_of": "2025-12-04"}, None, None, None),
        ("themes", "All Themes", "all", [t.key for t in _THEMES], "Theme keys shown in the UI",
         None, None),
    ]  # fmt: skip


def _noise_drafts(base: _Base) -> list[_Draft]:
    crypto = _THEMES[0]
    top = [base.tickers[i] for i in base.us_by_cap[:20]]
    return [
        ("theme_definition", crypto.name, crypto.key,
         {"description": crypto.description, "symbols": list(crypto.symbols[:6]),
          "last_updated": "2024-08-01T00:00:00"},
         "Left behind by a dev run of an old loader",
         (datetime(2024, 8, 1, 12, 0, tzinfo=UTC), None), "dev"),
        ("stock_universe", "Market Leaders", "market_leaders", {"symbols": top, "count": len(top)},
         "Left behind by a staging run of an old loader",
         (datetime(2024, 9, 12, 7, 45, tzinfo=UTC), datetime(2024, 9, 12, 7, 45, tzinfo=UTC)),
         "staging"),
    ]  # fmt: skip


def _drafts(scale: int, seed: int) -> list[_Draft]:
    base = _build_base(seed)
    n = len(base.tickers)
    taken = _reserved_tickers() | set(base.tickers)
    blocks: list[tuple[list[str], list[str], list[int]]] = [(base.tickers, base.names, base.caps)]
    for block in range(1, scale):
        rng = _rng(seed, f"block/{block}")
        tickers = _new_tickers(rng, n, taken, _COPY_TICKER_LENGTHS)
        names = [_company_name(rng, base.sectors[i]) for i in range(n)]
        caps = [_round_cap(c * (0.8 + 0.45 * rng.random())) for c in base.caps]
        blocks.append((tickers, names, caps))
    etf_rng = _rng(seed, "etfs")
    copy_etfs = _new_tickers(etf_rng, len(_ETFS) * (scale - 1), taken, _ETF_COPY_TICKER_LENGTHS)
    etf_keys = [[e.ticker for e in _ETFS]]
    etf_keys += [copy_etfs[b * len(_ETFS) : (b + 1) * len(_ETFS)] for b in range(scale - 1)]
    theme_keys = [[t.key for t in _THEMES]]
    theme_keys += [[f"{t.key}_{b + 1}" for t in _THEMES] for b in range(1, scale)]

    drafts = _sector_drafts(base, scale)
    for block, (tickers, _, _) in enumerate(blocks):
        for number, etf in enumerate(_ETFS):
            name = etf.name if block == 0 else f"{etf.name} Series {block + 1}"
            held = [tickers[i] for i in base.holdings[number]]
            drafts.append(_etf_draft(etf, etf_keys[block][number], name, held))
    for block, (tickers, _, _) in enumerate(blocks):
        suffix = "" if block == 0 else f"_{block + 1}"
        for number, theme in enumerate(_THEMES):
            name = theme.name if block == 0 else f"{theme.name} Series {block + 1}"
            members = [tickers[i] for i in base.theme_members[number]]
            drafts.append(_theme_draft(theme, theme_keys[block][number], name, members, suffix))
    for block, (tickers, names, caps) in enumerate(blocks):
        drafts += _stock_drafts(tickers, names, caps, base, etf_keys[block], theme_keys[block])
    drafts += _universe_drafts(base)
    drafts += _unrelated_drafts()
    return drafts


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while building many small acyclic containers (halves the time
    of a large scale: each collection would otherwise walk the whole growing heap)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_arguments(environment: str, scale: int, seed: int) -> None:
    if environment not in VALID_ENVIRONMENTS:
        raise UserFacingError(
            f"Unknown environment {environment!r}; use one of {', '.join(VALID_ENVIRONMENTS)}."
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise UserFacingError(f"The sample scale must be an integer from 1 to {MAX_SCALE}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserFacingError(f"The sample seed must be an integer, not {seed!r}.")


def generate_entries(
    environment: str = "DEFAULT",
    scale: int = 1,
    seed: int = 59,
    include_legacy_noise: bool = True,
    as_of: datetime = BASE_TIME,
) -> list[CacheEntry]:
    """The sample rows, in load order. Same arguments, same list; only ``environment`` differs
    between environments, plus (DEFAULT with ``include_legacy_noise``) two rows whose environment
    ('dev', 'staging') the migration must report as exceptions. Every row stamp is ``as_of``
    minus a fixed offset (the newest is ``as_of``); the values do not depend on it."""
    _check_arguments(environment, scale, seed)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise UserFacingError(f"The sample's as_of must be timezone-aware, not {as_of!r}.")
    shift = as_of - BASE_TIME
    with _gc_paused():
        drafts = _drafts(scale, seed)
        if include_legacy_noise and environment == "DEFAULT":
            drafts += _noise_drafts(_build_base(seed))
        entries = []
        for i, (kind, name, key, value, description, stamps, env) in enumerate(drafts):
            created, updated = stamps or _stamps(i)
            entries.append(
                CacheEntry(
                    kind,
                    name,
                    key,
                    value,
                    env or environment,
                    description,
                    created + shift,
                    None if updated is None else updated + shift,
                )
            )
        return entries


def noise_entries(scale: int = 1, seed: int = 59) -> list[CacheEntry]:
    """The legacy noise rows ('dev', 'staging') a DEFAULT load inserts beside the sample."""
    return [
        e
        for e in generate_entries("DEFAULT", scale, seed, include_legacy_noise=True)
        if e.environment not in VALID_ENVIRONMENTS
    ]


# --- COPY -----------------------------------------------------------------------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _copy_text(text: str) -> str:
    """A value as a COPY text-format field (backslash, tab, newline and CR escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _timestamp(moment: datetime | None) -> str:
    if moment is None:
        return "\\N"
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"cache entry timestamps must be timezone-aware, got {moment!r}")
    return moment.isoformat()


def iter_copy_chunks(
    entries: Iterable[CacheEntry], environment: str | None = None, rows_per_chunk: int = 10_000
) -> Iterator[bytes]:
    """COPY text-format input (columns COPY_COLUMNS), in chunks of rows_per_chunk rows.

    ``environment``, when given, replaces every entry's environment."""
    text = _copy_text
    lines: list[str] = []
    for e in entries:
        env = text(e.environment if environment is None else environment)
        description = "\\N" if e.description is None else text(e.description)
        # JSON text holds no raw control characters: only its backslashes need escaping
        value = _json(e.value).replace("\\", "\\\\")
        lines.append(
            f"{text(e.type)}\t{text(e.name)}\t{text(e.key)}\t{value}\t{env}\t{description}\t"
            f"{_timestamp(e.created_at)}\t{_timestamp(e.updated_at)}\n"
        )
        if len(lines) >= rows_per_chunk:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def copy_rows(entries: Iterable[CacheEntry], environment: str | None = None) -> bytes:
    """The whole COPY text-format input for entries (see iter_copy_chunks)."""
    return b"".join(iter_copy_chunks(entries, environment))


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, TABLE_NAME)


def _check_schema(schema: str) -> None:
    if not isinstance(schema, str) or not schema.strip() or len(schema.encode()) > 63:
        raise UserFacingError(f"Invalid schema name {schema!r}: use 1 to 63 bytes.")


def ensure_table(conn: psycopg.Connection[Any], schema: str = "public") -> None:
    """Create the schema and the legacy cache_entries table in it when absent."""
    _check_schema(schema)
    with conn.transaction():
        conn.execute(CREATE_SCHEMA_SQL.format(schema=sql.Identifier(schema)))
        conn.execute(CREATE_TABLE_SQL.format(table=_table(schema)))


def write_entries(
    conn: psycopg.Connection[Any],
    entries: Iterable[CacheEntry],
    *,
    schema: str = "public",
    environment: str | None = None,
) -> int:
    """COPY entries into schema.cache_entries (which must exist); returns the row count.

    Runs in the caller's transaction (or autocommits, on an autocommit connection)."""
    _check_schema(schema)
    statement = COPY_SQL.format(
        table=_table(schema), columns=sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for chunk in iter_copy_chunks(entries, environment):
                copy.write(chunk)
        return cursor.rowcount


def existing_rows(
    conn: psycopg.Connection[Any],
    schema: str,
    environments: Sequence[str],
    noise: Sequence[CacheEntry] = (),
) -> dict[str, int]:
    """Rows a load of ``environments`` would collide with, per environment (0 when the table
    does not exist): that environment's rows, and rows with the key of a noise row."""
    _check_schema(schema)
    table = _table(schema)
    found = conn.execute("select to_regclass(%s)", (table.as_string(conn),)).fetchone()
    counts = dict.fromkeys(environments, 0)
    if found is None or found[0] is None:
        return counts
    for environment, count in conn.execute(
        sql.SQL(
            "select environment, count(*) from {} where environment = any(%s) group by 1"
        ).format(table),
        (list(environments),),
    ).fetchall():
        counts[environment] = int(count)
    for e in noise:
        row = conn.execute(
            sql.SQL(
                "select count(*) from {} where type = %s and name = %s and key = %s"
                " and environment = %s"
            ).format(table),
            (e.type, e.name, e.key, e.environment),
        ).fetchone()
        if row and row[0]:
            counts[e.environment] = counts.get(e.environment, 0) + int(row[0])
    return counts


def _describe_rows(counts: Mapping[str, int]) -> str:
    shown = [f"{count:,} {environment!r}" for environment, count in counts.items() if count]
    return ", ".join(shown) + " rows"


def load_sample(
    conn: psycopg.Connection[Any],
    *,
    schema: str = "public",
    environments: Sequence[str] = ("DEFAULT",),
    scale: int = 1,
    seed: int = 59,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    as_of: datetime | None = None,
) -> LoadSummary:
    """Load the sample into schema.cache_entries for the given environments, in one transaction.

    A cache_entries table may hold somebody's real data, so by default the load refuses (and
    changes nothing) when the table already holds rows of those environments, or rows equal to
    the legacy noise it would insert ('dev' / 'staging', DEFAULT only); the error names the
    counts.  Only with ``replace`` does it first delete exactly those rows, nothing else.  The
    row stamps end at ``as_of``, by default now (whole seconds): a fresh load is fresh to
    ``dbt source freshness``.  Loading twice with ``replace`` and the same ``as_of`` gives the
    same content; by default only the stamps move with the clock.  On an idle connection the
    transaction is committed; inside a transaction the caller's commit decides."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    _check_schema(schema)
    if isinstance(environments, str):
        environments = (environments,)
    targets = tuple(dict.fromkeys(environments))
    if not targets:
        raise UserFacingError("No environment to load the sample into; name at least one.")
    for environment in targets:
        _check_arguments(environment, scale, seed)

    say(
        f"generating {len(_ETFS) * scale:,} ETFs, {len(_THEMES) * scale:,} themes and "
        f"{UNIVERSE_SIZE * scale:,} stocks (scale {scale}, seed {seed})..."
    )
    if as_of is None:
        as_of = datetime.now(UTC).replace(microsecond=0)
    everything = generate_entries("DEFAULT", scale, seed, include_legacy_noise=True, as_of=as_of)
    noise = [e for e in everything if e.environment not in VALID_ENVIRONMENTS]
    rows = [e for e in everything if e.environment in VALID_ENVIRONMENTS]
    generated = time.perf_counter()

    table = _table(schema)
    deleted = 0
    rows_by_type: Counter[str] = Counter()
    rows_by_environment: dict[str, int] = {}
    try:
        with conn.transaction():
            conn.execute(
                "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"validation.sample:{schema}",),
            )
            ensure_table(conn, schema)
            own_noise = noise if "DEFAULT" in targets else []
            present = existing_rows(conn, schema, targets, own_noise)
            if any(present.values()) and not replace:
                raise UserFacingError(
                    f"{schema}.{TABLE_NAME} already holds {_describe_rows(present)}; nothing was "
                    "loaded or changed. Load the sample into a database of its own, or replace "
                    "those rows explicitly with 'load-sample --replace --yes'."
                )
            if replace and any(present.values()):
                say(f"deleting {_describe_rows(present)} from {schema}.{TABLE_NAME}...")
                deleted += conn.execute(
                    sql.SQL("delete from {} where environment = any(%s)").format(table),
                    (list(targets),),
                ).rowcount
                for e in own_noise:
                    deleted += conn.execute(
                        sql.SQL(
                            "delete from {} where type = %s and name = %s and key = %s "
                            "and environment = %s"
                        ).format(table),
                        (e.type, e.name, e.key, e.environment),
                    ).rowcount
            for environment in targets:
                say(f"copying {len(rows):,} rows for {environment}...")
                write_entries(conn, rows, schema=schema, environment=environment)
                rows_by_environment[environment] = len(rows)
                rows_by_type.update(e.type for e in rows)
                if environment == "DEFAULT" and own_noise:
                    say(f"copying {len(own_noise)} legacy rows with invalid environments...")
                    write_entries(conn, own_noise, schema=schema)
                    rows_by_environment.update(Counter(e.environment for e in own_noise))
                    rows_by_type.update(e.type for e in own_noise)
            say(f"analyzing {schema}.{TABLE_NAME}...")
            conn.execute(sql.SQL("analyze {}").format(table))
    except psycopg.errors.UniqueViolation as exc:
        raise UserFacingError(
            f"{schema}.{TABLE_NAME} already holds a row with the key of a sample row "
            f"({exc.diag.message_detail or exc.diag.message_primary}); nothing was loaded. Load "
            "the sample into a database of its own."
        ) from exc
    finished = time.perf_counter()
    summary = LoadSummary(
        schema=schema,
        environments=targets,
        scale=scale,
        seed=seed,
        rows_by_type=dict(sorted(rows_by_type.items())),
        rows_by_environment=rows_by_environment,
        deleted_rows=deleted,
        generate_seconds=generated - started,
        copy_seconds=finished - generated,
        elapsed_seconds=finished - started,
    )
    return summary
