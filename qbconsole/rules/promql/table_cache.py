"""A file cache of a lark LALR parser's tables, as JSON: never pickle, so a file at the cache's
path can at worst be refused, not run.

The file holds lark's own serialisation (``Lark.memo_serialize``, which lark rebuilds only through
the parser's classes) keyed on a hash of the grammar, the options and the lark and Python
versions. It is read only when it is a regular file (not a symlink) owned by this process's
effective user and not writable by group or others, in a directory that is owned by that user
or not writable by group or others; it is written the same way: mode 0600, to a fresh temporary
file in that directory, then renamed over the old one. Anything unexpected means no cache, never
an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

FORMAT = 1
MAX_BYTES = 4 << 20  # far above a real table (~60 kB); a bigger file is not read
_TUPLE, _ITEMS = "__tuple__", "__items__"  # JSON spellings of tuples and int-keyed dicts


def cache_key(grammar: str, options: dict) -> str:
    """What the tables depend on: the grammar, the options, and the lark and Python versions."""
    text = repr((FORMAT, grammar, sorted((k, repr(v)) for k, v in options.items()),
                 lark.__version__, sys.version_info[:2]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode(value):
    """``value`` (lark's serialised tables) as JSON-ready data that ``decode`` turns back into it
    exactly: tuples and dicts with non-string keys are spelled as tagged objects."""
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str for k in value) and _TUPLE not in value and _ITEMS not in value:
            return {k: encode(v) for k, v in value.items()}
        return {_ITEMS: [[k, encode(v)] for k, v in value.items()]}
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, int):  # re flags in the lexer's part; lark takes them from the options
        return int(value)
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode_object(obj: dict):
    if len(obj) == 1 and _TUPLE in obj:
        return tuple(obj[_TUPLE])
    if len(obj) == 1 and _ITEMS in obj:
        return {k: v for k, v in obj[_ITEMS]}
    return obj


def decode(text: str):
    """The value ``encode`` was given, from the JSON text of what it returned."""
    return json.loads(text, object_hook=_decode_object)


def _dir_is_safe(directory: Path) -> bool:
    try:
        st = os.stat(directory)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    return st.st_uid == os.geteuid() or not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_trusted(path: Path) -> str | None:
    """The text of ``path`` when this process's user alone could have written it; else None."""
    if not _dir_is_safe(path.parent):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())  # of what was opened, so it cannot be swapped after the check
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_size > MAX_BYTES):
            return None
        try:
            return f.read(MAX_BYTES + 1).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None


def write_private(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` at once, mode 0600, when its directory is safe to read
    from later. False (and no file left behind) when it could not."""
    if not _dir_is_safe(path.parent):
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def load(path: Path, key: str, load_options: dict) -> Lark | None:
    """The parser whose tables ``path`` holds for ``key``; None when there is none to trust."""
    text = read_trusted(path)
    if text is None:
        return None
    try:
        stored = decode(text)
        if not isinstance(stored, dict) or stored.get("key") != key:
            return None
        return Lark._load_from_dict(stored["data"], stored["memo"], **load_options)
    except Exception:  # a damaged file of ours: lark may fail in any way while rebuilding from it
        return None


def save(path: Path, key: str, parser: Lark, load_options: dict) -> bool:
    """Write ``parser``'s tables to ``path`` under ``key`` (the options given again at load
    are left out). False when they could not be written."""
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in load_options}
    try:
        text = json.dumps({"key": key, "data": encode(data), "memo": encode(memo)},
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return False
    return write_private(path, text)
