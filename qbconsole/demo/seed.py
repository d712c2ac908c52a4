"""Deterministic seeding of the demo database: users, auctions, bids and orders.

Same seed and sizes give the same rows (timestamps are relative to the moment
of seeding). Everything is inserted with executemany in one transaction. A file
that is already seeded is reused as it is; a file that holds other tables is
refused rather than touched.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from qbconsole.demo.db import SCHEMA, TABLES

FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Greta", "Hiro", "Ines", "Jon", "Kemal",
         "Lena", "Mara", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor")
LAST = ("Okafor", "Schmidt", "Tanaka", "Silva", "Novak", "Haddad", "Larsen", "Moreau", "Kowalski",
        "Nguyen", "Rossi", "Petrov", "Garcia", "Ahmed", "Jensen", "Brown", "Costa", "Ivanova")
ITEMS = {
    "electronics": ("camera", "laptop", "headphones", "turntable", "drone", "synthesizer", "monitor"),
    "collectibles": ("stamp album", "coin set", "vinyl record", "comic book", "trading card", "poster"),
    "fashion": ("watch", "leather jacket", "handbag", "sneakers", "silk scarf", "sunglasses"),
    "home": ("armchair", "lamp", "rug", "espresso machine", "cast-iron pan", "bookshelf"),
    "sports": ("road bike", "tennis racket", "snowboard", "kayak", "climbing rope", "golf clubs"),
}
ADJECTIVES = ("vintage", "mint", "rare", "refurbished", "boxed", "signed", "classic", "limited",
              "hand-made", "barely used")

LOCKED_PASSWORD = "!"  # seeded accounts have no usable password: only signed-up users log in


@dataclass(frozen=True)
class SeedSize:
    users: int = 2000
    auctions: int = 500
    bids: int = 200_000

    def check(self) -> None:
        if self.users < 2 or self.auctions < 1 or self.bids < 0:
            raise ValueError("seed needs at least 2 users, 1 auction and 0 bids")


def _generate(seed: int, size: SeedSize, now: int) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    users = []
    for uid in range(1, size.users + 1):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        users.append((uid, f"user{uid:06d}@seed.quickbid.test", name, LOCKED_PASSWORD,
                      now - rng.randrange(1, 365 * 86400)))
    auctions: list[list[Any]] = []
    categories = sorted(ITEMS)
    for aid in range(1, size.auctions + 1):
        category = rng.choice(categories)
        title = f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(ITEMS[category])} #{aid}"
        start_price = round(rng.lognormvariate(3.5, 0.9), 2) + 1.0
        buy_now = round(start_price * rng.uniform(3.0, 6.0), 2) if rng.random() < 0.4 else None
        created = now - rng.randrange(3600, 7 * 86400)
        if rng.random() < 0.1:
            ends = now - rng.randrange(60, 2 * 86400)
        else:
            ends = now + rng.randrange(3600, 14 * 86400)
        # id, seller, title, category, start, current, buy_now, bid_count, leader, status, created, ends
        auctions.append([aid, rng.randrange(1, size.users + 1), title, category, start_price, start_price,
                         buy_now, 0, None, "open", created, ends])
    popularity = [rng.lognormvariate(0.0, 1.0) for _ in auctions]
    chosen = rng.choices(range(size.auctions), weights=popularity, k=size.bids)
    bids = []
    for bid_id, index in enumerate(chosen, start=1):
        row = auctions[index]
        amount = round(row[5] + max(0.25, row[4] * rng.uniform(0.001, 0.01)), 2)
        bidder = rng.randrange(1, size.users + 1)
        stamp = min(now, row[11]) - (size.bids - bid_id) // 50
        bids.append((bid_id, row[0], bidder, amount, max(row[10], stamp)))
        row[5], row[7], row[8] = amount, row[7] + 1, bidder
        if row[6] is not None and amount >= row[6]:
            row[6] = None
    orders = []
    for row in auctions:
        if row[11] <= now:
            if row[8] is not None and rng.random() < 0.6:
                row[9] = "sold"
                orders.append((row[8], row[0], row[5], "won", row[11] + rng.randrange(60, 3600)))
            else:
                row[9] = "closed"
    return {"users": users, "auctions": [tuple(r) for r in auctions], "bids": bids, "orders": orders}


def ensure_seeded(path: str, seed: int = 1, size: SeedSize = SeedSize(),
                  now: int | None = None) -> dict[str, Any]:
    """Create and fill the database at ``path`` unless it is already a seeded demo database.

    Returns ``{"reused": bool, "seconds": float, "users": n, "auctions": n, "bids": n, "orders": n}``.
    Raises ValueError when the file holds tables that are not the demo's.
    """
    size.check()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if existing and "meta" not in existing:
            raise ValueError(f"{path} is not a QuickBid demo database (it has tables {sorted(existing)})")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        seeded = conn.execute("SELECT value FROM meta WHERE key = 'seeded_at'").fetchone()
        if not seeded:
            stamp = int(time.time()) if now is None else now
            rows = _generate(seed, size, stamp)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", rows["users"])
            conn.executemany("INSERT INTO auctions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             rows["auctions"])
            conn.executemany("INSERT INTO bids VALUES (?, ?, ?, ?, ?)", rows["bids"])
            conn.executemany("INSERT INTO orders (user_id, auction_id, amount, kind, created_at) "
                             "VALUES (?, ?, ?, ?, ?)", rows["orders"])
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("seed", str(seed)), ("seeded_at", str(stamp)), ("users", str(size.users)),
                ("auctions", str(size.auctions)), ("bids", str(size.bids))])
            conn.execute("COMMIT")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # names from TABLES
                  for t in TABLES if t != "sessions"}
    finally:
        conn.close()
    return {"reused": bool(seeded), "seconds": round(time.perf_counter() - started, 3), **counts}
