"""Who the sample's stocks are: the base block (real tickers plus generated ones, who holds what)
and, at scale N, its N - 1 copies with new tickers, names and market caps.

Everything derives from ``seed`` through private ``random.Random`` streams, in a fixed order: the
same arguments always give the same universe.  The reference data comes from
validation/sample_reference.py.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from validation.sample_reference import (
    CAP_ANCHORS,
    CRYPTO_ETFS,
    ETFS,
    EXPECTED_ETF_HOLDINGS,
    EXPECTED_THEME_SIZES,
    NAME_STEMS,
    NAME_SUFFIXES,
    REAL_STOCKS,
    RETIRED_TICKERS,
    SECTOR_BY_CODE,
    SECTORS,
    THEMES,
)

UNIVERSE_SIZE = 3_700  # distinct symbols per block (one block per unit of scale)
AAPL_ETFS: tuple[str, ...] = ("DIA", "IWB", "IWV", "QQQ", "SCHG", "SPY", "VOO", "VTI", "VUG", "XLK")

_SP500_SIZE = 505
_IWB_SIZE = 1009
_IWM_SIZE = 1943
_SPARE_SP500_SEATS = ("IT", "HC", "FN", "IN", "CD")  # who gets S&P seats beyond the ETF needs
_GROWTH_SECTORS_FOR_QQQ = ("IT", "HC", "CD", "CM")
_ARKK_SECTORS = ("IT", "HC", "CM", "FN")
_SMALLEST_CAP = 1.5e7
_LARGEST_GENERATED_CAP = 4.0e10  # the largest US companies are all real tickers
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BASE_TICKER_LENGTHS = ((1, 2, 3, 4, 5), (1, 4, 30, 60, 5))
_COPY_TICKER_LENGTHS = ((4, 5), (40, 60))
_ETF_COPY_TICKER_LENGTHS = ((3, 4), (30, 70))


@dataclass(frozen=True)
class Base:
    """The first block: real tickers plus generated ones, and who holds what (by index)."""

    tickers: list[str]
    names: list[str]
    sectors: list[int]
    industries: list[str]
    caps: list[int]
    foreign: list[bool]
    us_by_cap: list[int]
    holdings: list[list[int]]  # aligned with ETFS, each ordered by market cap
    theme_members: list[list[int]]  # aligned with THEMES
    etfs_of: list[list[int]]  # per stock: indexes into ETFS, ascending ticker order
    themes_of: list[list[int]]  # per stock: indexes into THEMES


def rng_for(seed: int, stream: str) -> random.Random:
    """A private generator per stream (string seeds hash the same in every process)."""
    return random.Random(f"cache-entries-sample/{seed}/{stream}")  # noqa: S311 (not crypto)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"sample data invariant broken: {message}")


def _cap_curve(n: int) -> list[float]:
    """Market caps of n US stocks by rank, descending."""
    anchors = [a for a in CAP_ANCHORS if a[0] < n - 1] + [(n - 1, _SMALLEST_CAP)]
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


def round_cap(value: float) -> int:
    return max(1_000_000, int(value) // 100_000 * 100_000)


def new_tickers(
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


def company_name(rng: random.Random, sector: int) -> str:
    words = SECTORS[sector].words
    return (
        f"{NAME_STEMS[int(rng.random() * len(NAME_STEMS))]} "
        f"{words[int(rng.random() * len(words))]} "
        f"{NAME_SUFFIXES[int(rng.random() * len(NAME_SUFFIXES))]}"
    )


def reserved_tickers() -> set[str]:
    return (
        {s.ticker for s in REAL_STOCKS}
        | {e.ticker for e in ETFS}
        | {t for t, _ in CRYPTO_ETFS}
        | set(RETIRED_TICKERS)
    )


@functools.lru_cache(maxsize=4)
def build_base(seed: int) -> Base:
    rng = rng_for(seed, "base")
    reals = REAL_STOCKS
    n_real = len(reals)
    flags = [s.flags for s in reals]
    foreign = ["F" in f for f in flags]
    n_us = UNIVERSE_SIZE - sum(foreign)
    free_caps = _unclaimed_caps(
        _cap_curve(n_us), (s.cap_billions * 1e9 for s in reals if "F" not in s.flags)
    )
    n_gen = len(free_caps)
    n = n_real + n_gen

    tickers = [s.ticker for s in reals] + new_tickers(
        rng, n_gen, reserved_tickers(), _BASE_TICKER_LENGTHS
    )
    sectors = [s.sector for s in reals] + [-1] * n_gen
    industries = [s.industry for s in reals] + [""] * n_gen
    caps = [round_cap(s.cap_billions * 1e9 * rng.uniform(0.99, 1.01)) for s in reals]
    caps += [round_cap(min(c, _LARGEST_GENERATED_CAP) * rng.uniform(0.97, 1.03)) for c in free_caps]
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
    sector_etfs = {SECTOR_BY_CODE[e.sector]: e for e in ETFS if e.sector}
    real_sp = [i for i in range(n_real) if "S" in flags[i]]
    real_sp_count = Counter(sectors[i] for i in real_sp)
    quota = {s: max(real_sp_count[s], sector_etfs[s].holdings) for s in range(len(SECTORS))}
    spare = _SP500_SIZE - sum(quota.values())
    _check(spare >= 1, f"the real S&P 500 members leave {spare} spare seats")
    for step in range(spare):
        quota[SECTOR_BY_CODE[_SPARE_SP500_SEATS[step % len(_SPARE_SP500_SEATS)]]] += 1
    deficits = [quota[s] - real_sp_count[s] for s in range(len(SECTORS))]
    fillers = generated_by_cap[: sum(deficits)]
    for i in fillers:
        sector = rng.choices(range(len(SECTORS)), weights=deficits)[0]
        sectors[i] = sector
        deficits[sector] -= 1
    weights = [s.weight for s in SECTORS]
    for i in range(n_real, n):
        if sectors[i] < 0:
            sectors[i] = rng.choices(range(len(SECTORS)), weights=weights)[0]
        industries[i] = rng.choice(SECTORS[sectors[i]].industries)
    names = [s.name for s in reals] + [company_name(rng, sectors[i]) for i in range(n_real, n)]
    growth = [False] * n
    for i in us_by_cap:
        growth[i] = "G" in flags[i] or (
            "V" not in flags[i] and rng.random() < SECTORS[sectors[i]].growth_share
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
    q_codes = {SECTOR_BY_CODE[c] for c in _GROWTH_SECTORS_FOR_QQQ}
    q_pool = [i for i in iwb if i >= n_real and i not in sp_set and sectors[i] in q_codes]
    real_a = [i for i in range(n_real) if "A" in flags[i]]
    a_codes = {SECTOR_BY_CODE[c] for c in _ARKK_SECTORS}
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
    holdings = [lists[e.ticker] for e in ETFS]

    index_of = {t: i for i, t in enumerate(tickers)}
    theme_members = [[index_of[t] for t in theme.symbols] for theme in THEMES]

    etf_order = sorted(range(len(ETFS)), key=lambda e: ETFS[e].ticker)
    etfs_of: list[list[int]] = [[] for _ in range(n)]
    for e in etf_order:
        for i in holdings[e]:
            etfs_of[i].append(e)
    themes_of: list[list[int]] = [[] for _ in range(n)]
    for t, members in enumerate(theme_members):
        for i in members:
            themes_of[i].append(t)

    base = Base(
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


def _check_base(base: Base) -> None:
    for etf, held in zip(ETFS, base.holdings, strict=True):
        _check(len(held) == etf.holdings, f"{etf.ticker} holds {len(held)}, not {etf.holdings}")
        _check(len(set(held)) == len(held), f"{etf.ticker} holds a symbol twice")
    for theme, members in zip(THEMES, base.theme_members, strict=True):
        expected = EXPECTED_THEME_SIZES[theme.key]
        _check(len(set(members)) == expected, f"{theme.key} has {len(members)} members")
    _check(len(base.tickers) == UNIVERSE_SIZE, f"universe of {len(base.tickers)} symbols")
    _check(len(set(base.tickers)) == UNIVERSE_SIZE, "a ticker is used twice")
    _check(all(base.etfs_of[i] or base.themes_of[i] for i in range(UNIVERSE_SIZE)), "orphan")
    aapl = base.tickers.index("AAPL")
    held_by = {ETFS[e].ticker for e in base.etfs_of[aapl]}
    _check(held_by == set(AAPL_ETFS), f"AAPL is held by {sorted(held_by)}")


@dataclass(frozen=True)
class Block:
    """One block of the universe: its tickers, company names and market caps (aligned with the
    base block's indexes) and the keys of its ETFs and themes (aligned with ETFS and THEMES)."""

    tickers: list[str]
    names: list[str]
    caps: list[int]
    etf_keys: list[str]
    theme_keys: list[str]


def blocks(base: Base, scale: int, seed: int) -> list[Block]:
    """The base block, then scale - 1 copies: new tickers, names and caps, same structure."""
    n = len(base.tickers)
    taken = reserved_tickers() | set(base.tickers)
    stocks: list[tuple[list[str], list[str], list[int]]] = [(base.tickers, base.names, base.caps)]
    for block in range(1, scale):
        rng = rng_for(seed, f"block/{block}")
        tickers = new_tickers(rng, n, taken, _COPY_TICKER_LENGTHS)
        names = [company_name(rng, base.sectors[i]) for i in range(n)]
        caps = [round_cap(c * (0.8 + 0.45 * rng.random())) for c in base.caps]
        stocks.append((tickers, names, caps))
    etf_rng = rng_for(seed, "etfs")
    copy_etfs = new_tickers(etf_rng, len(ETFS) * (scale - 1), taken, _ETF_COPY_TICKER_LENGTHS)
    etf_keys = [[e.ticker for e in ETFS]]
    etf_keys += [copy_etfs[b * len(ETFS) : (b + 1) * len(ETFS)] for b in range(scale - 1)]
    theme_keys = [[t.key for t in THEMES]]
    theme_keys += [[f"{t.key}_{b + 1}" for t in THEMES] for b in range(1, scale)]
    return [
        Block(tickers, names, caps, etf_keys[block], theme_keys[block])
        for block, (tickers, names, caps) in enumerate(stocks)
    ]
