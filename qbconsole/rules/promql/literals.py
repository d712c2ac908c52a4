"""Literal values as Prometheus (Go) reads them: numbers, durations, strings, regexes.

Each reader raises ValueError with a Prometheus-style message; the parser turns that
into a PromQLSyntaxError at the literal's column.
"""

from __future__ import annotations

import re
import warnings

_DURATION = re.compile(r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?"
                       r"(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?", re.ASCII)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_MAX_DURATION_MS = (2**63 - 1) // 1_000_000  # what fits in Go's int64 nanoseconds


def parse_duration(text: str) -> int:
    """Milliseconds of a duration like ``1h30m`` or ``500ms`` (units in y w d h m s ms
    order, each at most once, as Prometheus's model.ParseDuration requires)."""
    m = _DURATION.fullmatch(text)
    if not text or m is None:
        raise ValueError(f"not a valid duration string: {text!r}".replace("'", '"'))
    total = sum(int(g) * unit for g, unit in zip(m.groups(), _UNIT_MS) if g)
    if total > _MAX_DURATION_MS:
        raise ValueError("duration out of range")
    return total


def parse_number(text: str) -> float:
    """A PromQL number literal, read as Prometheus does: first as a Go integer with base
    prefix (so ``0x1f`` is 31 and ``010`` is octal 8), else as a Go float."""
    lower = text.lower()
    if lower in ("inf", "nan"):
        return float(lower)
    if re.fullmatch(r"0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*", lower):
        base = 16 if lower.startswith("0x") else 8 if lower.startswith("0") else 10
        n = int(lower, base)
        if n < 2**63:
            return float(n)
    value = float(text) if not lower.startswith("0x") else float("inf")
    if value in (float("inf"), float("-inf")):
        raise ValueError(f'error parsing number: strconv.ParseFloat: parsing "{text}": value out of range')
    return value


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def unquote(token: str) -> str:
    """The value of a quoted string token: Go escapes in "..." and '...', none in `...`."""
    quote, body = token[0], token[1:-1]
    if quote == "`":
        return body
    if "\\" not in body:
        return body
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("invalid syntax")
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
        elif e in "'\"":
            if e != quote:
                raise ValueError(f"unknown escape sequence U+{ord(e):04X} '{e}'")
            out.append(ord(e))
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i:i + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            value = int(digits, 16)
            i += width
            if e == "x":
                out.append(value)
            elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise ValueError("invalid syntax")
            else:
                out += chr(value).encode("utf-8")
        elif e in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) != 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            out.append(int(digits, 8))
            i += 2
        else:
            raise ValueError(f"unknown escape sequence U+{ord(e):04X} '{e}'")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("invalid UTF-8 in string") from None


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_RE2_ONLY = re.compile(r"\[:(\^?)([a-z]+):\]|\\z|\\Q|\\C|\\p|\\P")
_PYTHON_ONLY = re.compile(r"\(\?(?:=|!|<=|<!|P=|\()|\\[1-9]|\\g<|\(\?<[^a-zA-Z_]|\(\?#")


def compile_regex(pattern: str) -> re.Pattern:
    """Compile an RE2 pattern (as Prometheus matchers use) with Python's re, fully
    anchored. Lookarounds and backreferences, which RE2 lacks, are refused; POSIX
    classes and ``\\z`` are translated. Raises ValueError when the pattern is invalid."""
    if _PYTHON_ONLY.search(pattern):
        raise ValueError(f"invalid regular expression {pattern!r}: not RE2 syntax")

    def translate(m: re.Match) -> str:
        if m.group(0) == "\\z":
            return "\\Z"
        if m.group(2) in _POSIX_CLASSES and not m.group(1):
            return _POSIX_CLASSES[m.group(2)]
        raise ValueError(f"invalid regular expression {pattern!r}: unsupported {m.group(0)}")

    translated = _RE2_ONLY.sub(translate, pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(f"(?:{translated})", re.ASCII)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def parse_go_float(text: str) -> float | None:
    """A label value read as Go's strconv.ParseFloat would (``le="+Inf"``), or None
    when Go would refuse it (including out-of-range values)."""
    t = text.lower().lstrip("+-")
    if t in ("inf", "infinity", "nan"):
        return float(text.lower().replace("infinity", "inf"))
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?", text.lower()):
        value = float(text)
    elif re.fullmatch(r"[+-]?0x([0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?[0-9]+", text.lower()):
        try:
            value = float.fromhex(text)
        except OverflowError:
            return None
    else:
        return None
    return None if value in (float("inf"), float("-inf")) else value
