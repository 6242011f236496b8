"""What the sample's rows hold: one draft row per cache entry, in load order.

A draft is a row without its environment (unless it is legacy noise) and, mostly, without its
stamps: ``validation/sample.py`` turns drafts into ``CacheEntry`` rows for one environment.  The
stocks, ETFs and themes come from validation/sample_universe.py; the JSON values never depend on
the load time, only the stamps do (``stamps``, laid out backwards from BASE_TIME).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from validation.sample_reference import (
    CRYPTO_ETFS,
    ETFS,
    EXPECTED_THEME_SIZES,
    SECTORS,
    THEMES,
    Etf,
    Theme,
)
from validation.sample_universe import Base, blocks, build_base

BASE_TIME = datetime(2025, 12, 5, 10, 0, tzinfo=UTC)
LAST_UPDATED = "2025-12-05T10:00:00"
MARKET_CAP_THRESHOLD = 5_000_000_000

# (type, name, key, value, description, (created_at, updated_at) or None, environment or None)
Draft = tuple[str, str, str, Any, str | None, tuple[datetime, datetime | None] | None, str | None]


def stamps(index: int) -> tuple[datetime, datetime | None]:
    """Deterministic timestamps of the index-th row; updated_at is NULL on every seventh row."""
    created = BASE_TIME - timedelta(days=120 + index % 61, seconds=(index * 7_919) % 86_400)
    if index % 7 == 6:
        return created, None
    return created, BASE_TIME - timedelta(seconds=(index * 104_729) % 259_200)


def _sector_drafts(base: Base, scale: int) -> list[Draft]:
    counts = Counter(base.sectors)
    drafts: list[Draft] = []
    for number, sector in enumerate(SECTORS):
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


def _etf_draft(etf: Etf, ticker: str, name: str, holdings: list[str]) -> Draft:
    value: dict[str, Any] = {"holdings": holdings, "total_holdings": len(holdings)}
    if etf.has_threshold:
        value["market_cap_threshold"] = MARKET_CAP_THRESHOLD
    value["last_updated"] = LAST_UPDATED
    value["data_source"] = f"{ticker.lower()}_holdings.csv"
    description = f"Holdings of {ticker} ({len(holdings)} symbols)"
    return ("etf_holdings", name, ticker, value, description, None, None)


def _theme_draft(theme: Theme, key: str, name: str, symbols: list[str], suffix: str) -> Draft:
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
    base: Base,
    etf_keys: list[str],
    theme_keys: list[str],
) -> list[Draft]:
    sectors = [s.name for s in SECTORS]
    drafts: list[Draft] = []
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


def _universe_drafts(base: Base) -> list[Draft]:
    t = base.tickers
    held = dict(zip((e.ticker for e in ETFS), base.holdings, strict=True))
    top = [t[i] for i in base.us_by_cap[:50]]
    crypto = [*THEMES[0].symbols, "COIN", "MSTR", "HOOD", "CRCL"]
    legacy_leaders = [*top[:22], "FB", "TWTR", "ATVI"]
    etf_names = {e.ticker: e.name for e in ETFS}
    broad = ("VTI", "IWV", "IWB", "VOO", "SPY")
    sector_etfs = [e.ticker for e in ETFS if e.sector]
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
        ("etf_universe", "Tracked ETFs", "tracked_etfs", [e.ticker for e in ETFS],
         "ETFs whose holdings are loaded", None, None),
        ("etf_universe", "Sector ETFs", "sector_etfs",
         {"symbols": sector_etfs, "count": len(sector_etfs)}, "Select Sector SPDR funds",
         None, None),
        ("etf_universe", "Crypto ETFs", "theme_crypto",
         {"etfs": [{"ticker": k, "name": v} for k, v in CRYPTO_ETFS]},
         "Spot bitcoin and crypto-equity ETFs", None, None),
        ("etf_universe", "Broad Market ETFs", "broad_market",
         {"etfs": [{"ticker": k, "name": etf_names[k]} for k in broad]},
         "Total-market and large-cap index funds", None, None),
    ]  # fmt: skip


def _unrelated_drafts() -> list[Draft]:
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
        ("themes", "All Themes", "all", [t.key for t in THEMES], "Theme keys shown in the UI",
         None, None),
    ]  # fmt: skip


def _noise_rows(base: Base) -> list[Draft]:
    crypto = THEMES[0]
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


def all_drafts(scale: int, seed: int) -> list[Draft]:
    """The rows of every environment at this scale and seed (no legacy noise), in load order."""
    base = build_base(seed)
    copies = blocks(base, scale, seed)
    rows = _sector_drafts(base, scale)
    for block, copy in enumerate(copies):
        for number, etf in enumerate(ETFS):
            name = etf.name if block == 0 else f"{etf.name} Series {block + 1}"
            held = [copy.tickers[i] for i in base.holdings[number]]
            rows.append(_etf_draft(etf, copy.etf_keys[number], name, held))
    for block, copy in enumerate(copies):
        suffix = "" if block == 0 else f"_{block + 1}"
        for number, theme in enumerate(THEMES):
            name = theme.name if block == 0 else f"{theme.name} Series {block + 1}"
            members = [copy.tickers[i] for i in base.theme_members[number]]
            rows.append(_theme_draft(theme, copy.theme_keys[number], name, members, suffix))
    for copy in copies:
        rows += _stock_drafts(
            copy.tickers, copy.names, copy.caps, base, copy.etf_keys, copy.theme_keys
        )
    rows += _universe_drafts(base)
    rows += _unrelated_drafts()
    return rows


def noise_drafts(seed: int) -> list[Draft]:
    """The two legacy rows ('dev', 'staging') a DEFAULT load adds after the sample."""
    return _noise_rows(build_base(seed))
