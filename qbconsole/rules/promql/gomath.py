"""Float arithmetic with Go's results, where Python's would raise or differ.

Python raises on 1/0, 0**-1, fmod(inf, 1) and floor(nan); Go (and so Prometheus)
returns IEEE values. ``pow`` follows Go's math.Pow algorithm, so integer powers
match Prometheus bit for bit.
"""

from __future__ import annotations

import math
import platform
from fractions import Fraction

INF = math.inf
NAN = math.nan
_copysign, _isinf, _isnan = math.copysign, math.isinf, math.isnan


def div(a: float, b: float) -> float:
    if b:
        return a / b
    if a != a or a == 0:
        return NAN
    return _copysign(INF, a) * _copysign(1.0, b)


def mod(a: float, b: float) -> float:
    """Go's math.Mod: the remainder with the sign of a; NaN for b == 0 or infinite a."""
    if b == 0 or _isinf(a) or a != a or b != b:
        return NAN
    return math.fmod(a, b)


def floor(x: float) -> float:
    if x != x or _isinf(x) or x == 0:
        return x
    return float(math.floor(x))


def ceil(x: float) -> float:
    if x != x or _isinf(x) or x == 0:
        return x
    return float(math.ceil(x))


def go_max(a: float, b: float) -> float:
    if a == INF or b == INF:
        return INF
    if a != a or b != b:
        return NAN
    if a == 0 and a == b:
        return b if _copysign(1.0, a) < 0 else a
    return a if a > b else b


def go_min(a: float, b: float) -> float:
    if a == -INF or b == -INF:
        return -INF
    if a != a or b != b:
        return NAN
    if a == 0 and a == b:
        return a if _copysign(1.0, a) < 0 else b
    return a if a < b else b


# 1/Ln2 and 1/Ln10 rounded once from the exact values, as Go's constant arithmetic does.
_INV_LN2, _INV_LN10 = 1.4426950408889634, 0.4342944819032518


_L1, _L2, _L3, _L4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
_L5, _L6, _L7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def log(x: float) -> float:
    """Go's math.Log (the FreeBSD algorithm Go uses on amd64), operation for operation."""
    if x != x or x == INF:
        return x
    if x < 0:
        return NAN
    if x == 0:
        return -INF
    f1, ki = math.frexp(x)
    if f1 < math.sqrt(2) / 2:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (_L1 + s4 * (_L3 + s4 * (_L5 + s4 * _L7)))
    t2 = s4 * (_L2 + s4 * (_L4 + s4 * _L6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


def log10(x: float) -> float:
    """Go's math.Log10, computed as Go computes it: log(x) * (1/Ln10)."""
    return log(x) * _INV_LN10


def log2(x: float) -> float:
    """Go's math.Log2: exact for powers of two, else log(frac) * (1/Ln2) + exp."""
    if x != x or x <= 0 or x == INF:
        return log(x)
    frac, exp = math.frexp(x)
    if frac == 0.5:
        return float(exp - 1)
    return log(frac) * _INV_LN2 + exp


def _amd64_fma() -> bool:
    """Whether Go's amd64 math.Exp takes its FMA path here (AVX2 and FMA present)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


_AMD64 = platform.machine().lower() in ("x86_64", "amd64")
_FMA = _AMD64 and _amd64_fma()
_LOG2E, _LN2U, _LN2L = 1.4426950408889634073599246810018920, 0.69314718055966295651160180568695068359375, \
    0.28235290563031577122588448175013436025525412068e-12
_EXP_TAYLOR = (1.9841269841269841270e-4, 1.3888888888888888889e-3, 8.3333333333333333333e-3,
               4.1666666666666666667e-2, 1.6666666666666666667e-1, 0.5, 1.0)


def _fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once, as the FMA instruction computes it."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def exp(x: float) -> float:
    """Go's math.Exp as its amd64 assembly computes it (both the FMA and the SSE2 path);
    elsewhere Python's exp, which may differ from Go's in the last bit."""
    if x != x or x == INF:
        return x
    if x == -INF:
        return 0.0
    if x > 7.09782712893384e+02:
        return INF
    if not _AMD64:
        try:
            return math.exp(x)
        except OverflowError:
            return INF
    k = round(_LOG2E * x)
    if not -2**31 <= k < 2**31:
        k = -2**31  # CVTSD2SL's "integer indefinite"
    kf = float(k)
    if _FMA:
        x = _fma(-_LN2U, kf, x)
        x = _fma(-_LN2L, kf, x)
        x *= 0.0625
        t = 2.4801587301587301587e-5
        for c in _EXP_TAYLOR:
            t = _fma(t, x, c)
        x *= t
        for _ in range(3):
            x *= x + 2.0
        x = _fma(x, x + 2.0, 1.0)
    else:
        x -= kf * _LN2U
        x -= kf * _LN2L
        x *= 0.0625
        t = 2.4801587301587301587e-5 * x
        for c in _EXP_TAYLOR[:-1]:
            t = (t + c) * x
        t += 1.0
        x *= t
        for _ in range(4):
            x *= x + 2.0
        x += 1.0
    biased = k + 0x3FF
    if biased >= 0x7FF:
        return INF
    if biased > 0:
        return x * math.ldexp(1.0, k)
    if biased < -52:
        return 0.0
    return x * math.ldexp(1.0, k + 1022) * math.ldexp(1.0, -1022)


def _is_odd_int(y: float) -> bool:
    if abs(y) >= 2**53:
        return False
    frac, whole = math.modf(y)
    return frac == 0 and int(whole) & 1 == 1


def pow(x: float, y: float) -> float:  # noqa: A001 - the operator's name
    """Go's math.Pow, special cases and algorithm included."""
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if x != x or y != y:
        return NAN
    if x == 0:
        if y < 0:
            return -INF if _copysign(1.0, x) < 0 and _is_odd_int(y) else INF
        return x if _copysign(1.0, x) < 0 and _is_odd_int(y) else 0.0
    if _isinf(y):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    if _isinf(x):
        if x < 0:
            return pow(1 / x, -y)
        return 0.0 if y < 0 else INF
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else NAN
    if y == -0.5:
        return 1 / math.sqrt(x) if x >= 0 else NAN
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    if yi >= 2.0**63:
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    a1, ae = 1.0, 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = exp(yf * log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or (1 << 12) < xe:
            ae += xe
            break
        if i & 1 == 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    return _ldexp(a1, ae)


def _ldexp(frac: float, exp: int) -> float:
    try:
        return math.ldexp(frac, exp)
    except OverflowError:
        return _copysign(INF, frac)
