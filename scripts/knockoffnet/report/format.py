"""Number formatting of the report (public: the tests compare table cells with these)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

MINUS = "\u2212"
DASH = "\u2013"
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _missing(x: Any) -> bool:
    try:
        return x is None or (isinstance(x, float | int | np.number) and math.isnan(float(x)))
    except (TypeError, ValueError):
        return True


def fmt_num(x: Any, digits: int = 3) -> str:
    """Significant digits, a real minus sign and ×10ⁿ for extremes: tables stay scannable."""
    if _missing(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else f"{MINUS}∞"
    if x == 0:
        return "0"
    x = float(f"{x:.{digits}g}")
    sign = MINUS if x < 0 else ""
    ax = abs(x)
    mag = math.floor(math.log10(ax))
    if -3 <= mag < 6:
        body = f"{ax:,.{max(digits - 1 - mag, 0)}f}"
        return sign + (body.replace(",", "") if ax < 10_000 else body)
    mant, exp = f"{ax:.{digits - 1}e}".split("e")
    return f"{sign}{mant}×10{str(int(exp)).translate(SUPERSCRIPT)}"


def fmt_signed(x: Any, digits: int = 3) -> str:
    """Like :func:`fmt_num` but with an explicit +, because effect signs carry the direction."""
    s = fmt_num(x, digits)
    return s if s in (DASH, "0") or s.startswith(MINUS) else "+" + s


def fmt_q(q: Any) -> str:
    """q-values to three decimals; below 0.001 the exact value is noise, so '<0.001'."""
    if _missing(q):
        return DASH
    q = float(q)
    return "<0.001" if q < 0.001 else f"{min(q, 1.0):.3f}"


def fmt_freq(f: Any) -> str:
    """Selection frequency as a whole percentage of runs."""
    return DASH if _missing(f) else f"{100 * float(f):.0f}%"


def fmt_int(n: Any) -> str:
    """Counts with thousands separators."""
    return DASH if _missing(n) else f"{int(n):,}"


def fmt_pm(mean: Any, sd: Any, digits: int = 3) -> str:
    """mean ± sd, the form every comparison table in the paper uses."""
    return DASH if _missing(mean) else f"{fmt_num(mean, digits)} ± {fmt_num(sd, 2)}"


def fmt_seconds(s: Any) -> str:
    """Durations a reader can compare at a glance (s, min, h)."""
    if _missing(s):
        return DASH
    s = float(s)
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------------------------
# loading


def _as_bool(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _as_float(s: pd.Series) -> pd.Series:
    text = s.astype(str).str.replace("∞", "inf", regex=False).str.replace(MINUS, "-", regex=False)
    return pd.to_numeric(text, errors="coerce")
