"""QuickBid's business operations: accounts, sessions, auctions, bids and checkout.

Each method takes validated-or-raw input, does its database work through the
named queries and returns ``(status, json_body)`` or raises ``ApiError``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from typing import Any, Mapping

from qbconsole.demo.cache import LruCache
from qbconsole.demo.db import Database
from qbconsole.demo.limits import ActiveSessions, LoginGuard
from qbconsole.demo.metrics import PlatformMetrics
from qbconsole.demo.validation import (ApiError, email_field, number_field, parse_json_object,
                                       query_int, reject_unknown, text_field)

HASH_ITERATIONS = 5000
SESSION_SECONDS = 3600
CATEGORIES = ("collectibles", "electronics", "fashion", "home", "sports")
Result = tuple[int, dict[str, Any]]


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, HASH_ITERATIONS)
    return f"pbkdf2_sha256${HASH_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256":
        return False  # locked account (seeded users) or unknown scheme
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(parts[2]), int(parts[1]))
    return hmac.compare_digest(digest.hex(), parts[3])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    token = header[len("Bearer "):].strip()
    return token or None


def auction_json(row: sqlite3.Row, now: int) -> dict[str, Any]:
    item = {k: row[k] for k in row.keys()}
    item["open"] = row["status"] == "open" and row["ends_at"] > now
    return item


class Shop:
    """The QuickBid operations over one database, one view cache and the platform's metrics."""

    def __init__(self, db: Database, cache: LruCache, metrics: PlatformMetrics,
                 guard: LoginGuard, active: ActiveSessions) -> None:
        self.db = db
        self.cache = cache
        self.metrics = metrics
        self.guard = guard
        self.active = active

    # -- accounts and sessions ------------------------------------------------------

    def signup(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"email", "password", "name"})
        email = email_field(body)
        password = text_field(body, "password", min_len=8, max_len=128)
        name = text_field(body, "name", max_len=80, required=False, default=email.split("@")[0])
        stored = hash_password(password)  # type: ignore[arg-type]
        with self.db.connection() as conn:
            try:
                with self.db.transaction(conn):
                    user_id = self.db.insert(conn, "user_insert", (email, name, stored, int(time.time())))
            except sqlite3.IntegrityError:
                raise ApiError(409, "an account with this email already exists") from None
        self.metrics.signups.inc()
        return 201, {"user_id": user_id, "email": email}

    def login(self, raw: bytes, client_ip: str) -> Result:
        blocked = self.guard.blocked_for(client_ip)
        if blocked > 0:
            error = ApiError(403, "blocked: too many failed logins from this address",
                             retry_after_s=round(blocked, 1))
            error.headers["Retry-After"] = str(int(blocked) + 1)
            raise error
        body = parse_json_object(raw)
        reject_unknown(body, {"email", "password"})
        email = email_field(body)
        password = text_field(body, "password", max_len=128)
        rows = self.db.query("user_by_email", (email,))
        if not rows or not verify_password(password, rows[0]["password_hash"]):  # type: ignore[arg-type]
            self.metrics.login_failures.inc()
            self.guard.failed(client_ip)
            raise ApiError(401, "invalid email or password")
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        with self.db.connection() as conn, self.db.transaction(conn):
            self.db.insert(conn, "session_insert", (token_hash(token), rows[0]["id"], now, now + SESSION_SECONDS))
        self.metrics.sessions.inc()
        self.active.touch(token_hash(token))
        return 200, {"token": token, "user_id": rows[0]["id"], "expires_in": SESSION_SECONDS}

    def authenticate(self, header: str | None, required: bool = True) -> int | None:
        """The user id of the bearer session, or ApiError(401) when required and absent/invalid."""
        token = bearer_token(header)
        if token is None:
            if required:
                error = ApiError(401, "login required: send Authorization: Bearer <token>")
                error.headers["WWW-Authenticate"] = "Bearer"
                raise error
            return None
        digest = token_hash(token)
        rows = self.db.query("session_get", (digest,))
        if not rows or rows[0]["expires_at"] <= time.time():
            raise ApiError(401, "session unknown or expired; log in again")
        self.active.touch(digest)
        return int(rows[0]["user_id"])

    # -- auctions ---------------------------------------------------------------------

    def list_auctions(self, query: Mapping[str, list[str]]) -> Result:
        page = query_int(query, "page", 1, 1, 100_000)
        per_page = query_int(query, "per_page", 20, 1, 50)
        now = int(time.time())
        with self.db.connection() as conn:
            total = self.db.run(conn, "auction_count", (now,))[0][0]
            rows = self.db.run(conn, "auction_list", (now, per_page, (page - 1) * per_page))
        return 200, {"auctions": [auction_json(r, now) for r in rows], "page": page,
                     "per_page": per_page, "total": total, "pages": max(1, -(-total // per_page))}

    def count_active_auctions(self) -> int:
        return int(self.db.query("auction_count", (int(time.time()),))[0][0])

    def view_auction(self, auction_id: int) -> Result:
        """An auction and its ten highest bids: the bid lookup, behind the LRU cache."""
        view = self.cache.get(auction_id)
        if view is not None:
            self.metrics.cache_hits.inc()
        else:
            self.metrics.cache_misses.inc()
            with self.db.connection() as conn:
                rows = self.db.run(conn, "auction_get", (auction_id,))
                if not rows:
                    raise ApiError(404, f"no auction with id {auction_id}")
                bids = self.db.run(conn, "bid_lookup", (auction_id,))
            view = {"auction": {k: rows[0][k] for k in rows[0].keys()},
                    "top_bids": [{k: b[k] for k in b.keys()} for b in bids]}
            self.cache.put(auction_id, view)
        auction = dict(view["auction"])
        auction["open"] = auction["status"] == "open" and auction["ends_at"] > time.time()
        return 200, {"auction": auction, "top_bids": view["top_bids"]}

    def create_auction(self, user_id: int, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"title", "category", "starting_price", "buy_now_price", "duration_s"})
        title = text_field(body, "title", min_len=3, max_len=120)
        category = text_field(body, "category", max_len=40)
        if category not in CATEGORIES:
            raise ApiError(400, f"category must be one of {', '.join(CATEGORIES)}")
        start = number_field(body, "starting_price", minimum=0.01, maximum=1_000_000)
        buy_now = number_field(body, "buy_now_price", minimum=0.01, maximum=10_000_000, required=False)
        if buy_now is not None and buy_now <= start:  # type: ignore[operator]
            raise ApiError(422, "buy_now_price must be higher than starting_price")
        duration = number_field(body, "duration_s", minimum=60, maximum=30 * 86400, integer=True)
        now = int(time.time())
        start = round(float(start), 2)  # type: ignore[arg-type]
        buy_now = None if buy_now is None else round(float(buy_now), 2)
        with self.db.connection() as conn, self.db.transaction(conn):
            auction_id = self.db.insert(conn, "auction_insert", (
                user_id, title, category, start, start, buy_now, now, now + int(duration)))  # type: ignore
        return 201, {"auction_id": auction_id, "ends_at": now + int(duration)}  # type: ignore[arg-type]

    def place_bid(self, user_id: int, auction_id: int, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"amount"})
        amount = round(float(number_field(body, "amount", minimum=0.01, maximum=100_000_000)), 2)  # type: ignore
        now = int(time.time())
        with self.db.connection() as conn, self.db.transaction(conn):
            rows = self.db.run(conn, "auction_get", (auction_id,))
            if not rows:
                raise ApiError(404, f"no auction with id {auction_id}")
            auction = rows[0]
            if auction["status"] != "open" or auction["ends_at"] <= now:
                raise ApiError(409, "auction is closed for bids")
            if auction["seller_id"] == user_id:
                raise ApiError(403, "sellers cannot bid on their own auction")
            current = auction["current_price"]
            floor = current if auction["bid_count"] else current - 0.01
            if amount <= floor:
                raise ApiError(409, f"bid must exceed the current top of {current:.2f}",
                               current_price=current)
            bid_id = self.db.insert(conn, "bid_insert", (auction_id, user_id, amount, now))
            self.db.run(conn, "auction_bid_update", (amount, user_id, amount, auction_id))
        self.metrics.bids.inc()
        bid = {"id": bid_id, "user_id": user_id, "amount": amount, "created_at": now}
        self.cache.update(auction_id, lambda view: _with_bid(view, bid))
        return 201, {"bid_id": bid_id, "auction_id": auction_id, "amount": amount}

    def checkout(self, user_id: int, raw: bytes) -> Result:
        """Buy now on an open auction, or pay for an ended auction the user leads."""
        body = parse_json_object(raw)
        reject_unknown(body, {"auction_id"})
        auction_id = int(number_field(body, "auction_id", minimum=1, maximum=10**12, integer=True))  # type: ignore
        now = int(time.time())
        with self.db.connection() as conn, self.db.transaction(conn):
            rows = self.db.run(conn, "auction_get", (auction_id,))
            if not rows:
                raise ApiError(404, f"no auction with id {auction_id}")
            auction = rows[0]
            if auction["status"] == "sold" or self.db.run(conn, "order_by_auction", (auction_id,)):
                raise ApiError(409, "this item is already sold")
            if auction["seller_id"] == user_id:
                raise ApiError(403, "sellers cannot buy their own item")
            if auction["ends_at"] > now and auction["status"] == "open":
                if auction["buy_now_price"] is None:
                    raise ApiError(409, "auction is still running and has no buy-now price")
                amount, kind = auction["buy_now_price"], "buy_now"
            elif auction["leader_id"] == user_id:
                amount, kind = auction["current_price"], "won"
            else:
                raise ApiError(409, "auction has ended and you are not the winning bidder")
            order_id = self.db.insert(conn, "order_insert", (user_id, auction_id, amount, kind, now))
            self.db.run(conn, "auction_mark_sold", (auction_id,))
        self.cache.discard(auction_id)
        self.metrics.orders.inc()
        self.metrics.revenue.inc(amount)
        return 201, {"order_id": order_id, "auction_id": auction_id, "amount": amount, "kind": kind}


def _with_bid(view: dict[str, Any], bid: dict[str, Any]) -> dict[str, Any] | None:
    """The cached view after a new top bid; None (drop it) when the bid is not the new top."""
    auction = dict(view["auction"])
    if bid["amount"] <= auction["current_price"] and auction["bid_count"]:
        return None
    auction["current_price"] = bid["amount"]
    auction["bid_count"] += 1
    auction["leader_id"] = bid["user_id"]
    if auction["buy_now_price"] is not None and auction["buy_now_price"] <= bid["amount"]:
        auction["buy_now_price"] = None
    return {"auction": auction, "top_bids": [bid, *view["top_bids"]][:10]}
