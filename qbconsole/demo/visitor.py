"""Simulated QuickBid users (and a couple of bots) and the client-side request statistics.

A visit lands on the auction list, may bounce, may sign up or log in (now and
then with a wrong password), views a few auctions, bids on some, buys some and
occasionally lists an item. Every page view sends a RUM beacon; the visit ends
with a session beacon and sometimes survey answers whose scores fall when the
pages were slow or failing.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from qbconsole.demo import beacons
from qbconsole.demo.beacons import BeaconSink
from qbconsole.demo.experiment import EVENT as CLICK
from qbconsole.demo.experiment import NAME as EXPERIMENT
from qbconsole.demo.experiment import BidButtonTest


@dataclass
class Reply:
    status: int  # 0 when the request failed before any HTTP answer
    body: Any
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class LoadStats:
    """Counts and latencies of the requests made: the latencies of people's requests (not
    bots') per summary window, and a bounded uniform sample of them for the whole run."""

    def __init__(self, sample_size: int = 10_000) -> None:
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.transport_errors = 0
        self._window: list[float] = []
        self._sample: list[float] = []
        self._sample_size = sample_size
        self._seen = 0
        self._rng = random.Random(0)

    def record(self, status: int, seconds: float, human: bool) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == 0:
            self.transport_errors += 1
        if human and status:
            self._window.append(seconds)
            self._seen += 1
            if len(self._sample) < self._sample_size:
                self._sample.append(seconds)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < self._sample_size:
                    self._sample[slot] = seconds

    def p95_overall(self) -> float | None:
        return p95(self._sample)

    @property
    def errors(self) -> int:
        """Server errors and failed requests (4xx answers are the users' own doing)."""
        return self.transport_errors + sum(n for s, n in self.by_status.items() if s >= 500)

    def take_window(self) -> list[float]:
        window, self._window = self._window, []
        return window


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


class Api:
    """One client address talking to the platform; reports 429s as security events."""

    def __init__(self, client: httpx.AsyncClient, ip: str, stats: LoadStats, sink: BeaconSink,
                 human: bool = True) -> None:
        self.client, self.ip, self.stats, self.sink, self.human = client, ip, stats, sink, human

    async def call(self, method: str, path: str, json: Any = None, token: str | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, json=json, headers=headers)
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = None
        except httpx.HTTPError:
            status, body = 0, None
        seconds = time.perf_counter() - started
        self.stats.record(status, seconds, self.human)
        if status == 429:
            self.sink.emit(beacons.security("rate_limited", self.ip))
        return Reply(status, body, seconds)


@dataclass
class Behaviour:
    """Probabilities and times that shape a visit; tests may make them more eager."""

    think_mean_s: float = 1.0
    render_median_s: float = 0.35
    anonymous: float = 0.3
    new_account: float = 0.35
    wrong_password: float = 0.07
    bid: float = 0.35
    buy_now: float = 0.12
    list_item: float = 0.08
    next_page: float = 0.3
    survey: float = 0.3


@dataclass
class Shared:
    """What the crowd knows collectively: accounts it created, auctions it leads."""

    run_id: str
    accounts: list[tuple[str, str]] = field(default_factory=list)
    leads: dict[str, dict[int, int]] = field(default_factory=dict)  # email -> {auction_id: ends_at}
    serial: Any = field(default_factory=itertools.count)


class Visit:
    """One user session, its page views and the beacons they produce."""

    def __init__(self, api: Api, rng: random.Random, shared: Shared, behaviour: Behaviour,
                 experiment: BidButtonTest | None = None) -> None:
        self.api, self.rng, self.shared, self.b = api, rng, shared, behaviour
        self.experiment = experiment
        self.unit: str | None = None  # this visit's id in the bid-button experiment, once exposed
        self.sink = api.sink
        self.loads: list[float] = []
        self.failures = 0
        self.calls = 0
        self.token: str | None = None
        self.email: str | None = None
        self.user_id: int | None = None

    async def think(self, factor: float = 1.0) -> None:
        await asyncio.sleep(min(5.0, self.rng.expovariate(1.0) * self.b.think_mean_s * factor))

    async def call(self, method: str, path: str, json: Any = None) -> Reply:
        reply = await self.api.call(method, path, json=json, token=self.token)
        self.calls += 1
        if reply.status == 0 or reply.status >= 500:
            self.failures += 1
        return reply

    def page(self, name: str, reply: Reply, interaction: float | None = None) -> None:
        render = self.rng.lognormvariate(math.log(self.b.render_median_s), 0.4) if reply.ok else 0.05
        load = reply.seconds + render
        self.loads.append(load)
        self.sink.emit(beacons.page_view(name, load, interaction))

    async def run(self) -> None:
        started = time.monotonic()
        listing = await self.call("GET", f"/api/auctions?page={self._page_number(None)}")
        self.page("auctions", listing)
        mean_load = self.loads[-1]
        bounce = 0.12 + 0.3 * min(1.0, max(0.0, mean_load - 1.0) / 2.0) + (0.5 if not listing.ok else 0.0)
        if self.rng.random() < bounce:
            self.sink.emit(beacons.session_end(time.monotonic() - started, bounced=True))
            self._survey()
            return
        if self.rng.random() >= self.b.anonymous:
            await self.think(0.5)
            await self._log_in()
        await self._collect_winnings()
        for _ in range(self.rng.choice((1, 1, 2, 2, 3, 4, 5))):
            if not listing.ok or not listing.body.get("auctions"):
                break
            await self.think()
            if not await self._view_auction(listing.body["auctions"]):
                break
            if self.rng.random() < self.b.next_page:
                await self.think(0.5)
                listing = await self.call("GET", f"/api/auctions?page={self._page_number(listing.body)}")
                self.page("auctions", listing)
        if self.token and self.rng.random() < self.b.list_item:
            await self._list_item()
        self.sink.emit(beacons.session_end(time.monotonic() - started, bounced=False))
        self._survey()

    def _page_number(self, body: dict[str, Any] | None) -> int:
        pages = body["pages"] if body else 25
        if body and self.rng.random() < 0.5:
            return body["page"] % pages + 1
        return min(pages, 1 + int(self.rng.expovariate(1 / 6)))

    async def _log_in(self) -> None:
        accounts = self.shared.accounts
        if not accounts or self.rng.random() < self.b.new_account:
            email = f"{self.shared.run_id}-{next(self.shared.serial)}@load.quickbid.test"
            password = f"pw-{self.rng.getrandbits(48):012x}"
            signup = await self.call("POST", "/api/signup", {"email": email, "password": password,
                                                             "name": f"Load user {email.split('@')[0]}"})
            self.page("signup", signup)
            self.sink.emit(beacons.task("signup", signup.ok))
            if not signup.ok:
                return
            accounts.append((email, password))
            if len(accounts) > 5000:
                del accounts[: len(accounts) - 5000]
        else:
            email, password = self.rng.choice(accounts)
        await self.think(0.5)
        if self.rng.random() < self.b.wrong_password:
            wrong = await self.call("POST", "/api/login", {"email": email, "password": password + "x"})
            self.page("login", wrong)
            if not self._login_refused(wrong):
                return
            await self.think(0.5)
        login = await self.call("POST", "/api/login", {"email": email, "password": password})
        self.page("login", login)
        if login.ok:
            self.token, self.email, self.user_id = login.body["token"], email, login.body["user_id"]
        else:
            self._login_refused(login)

    def _login_refused(self, reply: Reply) -> bool:
        """Report a refused login; True when trying again makes sense."""
        if reply.status == 401:
            self.sink.emit(beacons.security("failed_login", self.api.ip))
            return True
        if reply.status == 403:
            self.sink.emit(beacons.security("blocked_request", self.api.ip))
        return False

    async def _collect_winnings(self) -> None:
        if not self.email:
            return
        leads = self.shared.leads.get(self.email, {})
        for auction_id, ends_at in list(leads.items()):
            if ends_at <= time.time():
                del leads[auction_id]
                reply = await self.call("POST", "/api/checkout", {"auction_id": auction_id})
                self.page("checkout", reply)
                self.sink.emit(beacons.task("checkout", reply.ok))

    async def _view_auction(self, items: list[dict[str, Any]]) -> bool:
        """View one auction of the list, maybe bid or buy; False when the visit should end."""
        item = items[min(len(items) - 1, int(self.rng.expovariate(1 / 5)))]
        view = await self.call("GET", f"/api/auctions/{item['id']}")
        if not view.ok:
            self.page("auction", view)
            return view.status < 500 or self.rng.random() < 0.5
        auction = view.body["auction"]
        interaction = None
        if self.token and auction["open"] and auction["seller_id"] != self.user_id:
            if await self._decides_to_bid():
                await self.think(0.3)
                interaction = await self._bid(auction)
            elif auction["buy_now_price"] is not None and self.rng.random() < self.b.buy_now:
                self.page("auction", view)
                await self.think(0.5)
                order = await self.call("POST", "/api/checkout", {"auction_id": auction["id"]})
                self.page("checkout", order, interaction=order.seconds)
                self.sink.emit(beacons.task("checkout", order.ok))
                return True
        self.page("auction", view, interaction)
        return True

    async def _decides_to_bid(self) -> bool:
        """Whether the user clicks "bid". The visit's first bid button is its exposure in the
        bid-button experiment (see demo/experiment.py); that click is the experiment's event."""
        if self.experiment is None or self.unit is not None:
            return self.rng.random() < self.b.bid
        self.unit = f"{self.shared.run_id}-visit-{next(self.shared.serial)}"
        variant = await self.experiment.variant(self.unit)
        clicks = self.rng.random() < self.experiment.click_probability(self.b.bid, variant)
        if clicks and variant is not None:
            self.sink.emit({"type": "experiment_event", "experiment": EXPERIMENT, "user": self.unit,
                            "event": CLICK})
        return clicks

    async def _bid(self, auction: dict[str, Any]) -> float:
        """Bid a little over the top (once more if outbid meanwhile); the bid's latency."""
        price = auction["current_price"]
        total = 0.0
        for _ in range(2):
            amount = round(price * (1 + self.rng.uniform(0.01, 0.05)) + 0.5, 2)
            reply = await self.call("POST", f"/api/auctions/{auction['id']}/bids", {"amount": amount})
            total += reply.seconds
            if reply.ok:
                self.shared.leads.setdefault(self.email or "", {})[auction["id"]] = auction["ends_at"]
                self.sink.emit(beacons.task("place_bid", True))
                return total
            if reply.status != 409 or not isinstance(reply.body, dict) or "current_price" not in reply.body:
                break
            price = reply.body["current_price"]
        self.sink.emit(beacons.task("place_bid", False))
        return total

    async def _list_item(self) -> None:
        price = round(self.rng.lognormvariate(3.5, 0.8) + 1, 2)
        body = {"title": f"Load-test lot {next(self.shared.serial)}",
                "category": self.rng.choice(("collectibles", "electronics", "fashion", "home", "sports")),
                "starting_price": price, "duration_s": self.rng.randrange(120, 900)}
        if self.rng.random() < 0.6:
            body["buy_now_price"] = round(price * self.rng.uniform(2, 4), 2)
        reply = await self.call("POST", "/api/auctions", body)
        self.page("sell", reply, interaction=reply.seconds)
        self.sink.emit(beacons.task("list_item", reply.ok))

    def _survey(self) -> None:
        if self.rng.random() >= self.b.survey:
            return
        slow = max(0.0, sum(self.loads) / max(1, len(self.loads)) - 1.0)
        failing = self.failures / max(1, self.calls)
        if self.rng.random() < 0.8:
            score = 4.7 - 0.9 * slow - 2.0 * failing + self.rng.gauss(0, 0.6)
            self.sink.emit(beacons.satisfaction(int(min(5, max(1, round(score))))))
        if self.rng.random() < 0.8:
            score = 9.2 - 2.0 * slow - 5.0 * failing + self.rng.gauss(0, 1.2)
            self.sink.emit(beacons.nps(int(min(10, max(0, round(score))))))


async def scrape_burst(api: Api, requests: int = 80, concurrency: int = 6) -> None:
    """A scraper pulling list pages as fast as it can: runs into the rate limiter."""
    pages = iter(range(1, requests + 1))

    async def worker() -> None:
        for page in pages:
            await api.call("GET", f"/api/auctions?page={1 + page % 25}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def credential_stuffing(api: Api, rng: random.Random, attempts: int = 25) -> None:
    """Logins with leaked-looking credentials from one address until the platform blocks it."""
    for _ in range(attempts):
        email = f"victim{rng.randrange(10**6)}@mail.example"
        reply = await api.call("POST", "/api/login", {"email": email, "password": f"hunter{rng.randrange(100)}!"})
        if reply.status == 401:
            api.sink.emit(beacons.security("failed_login", api.ip))
        elif reply.status == 403:
            api.sink.emit(beacons.security("blocked_request", api.ip))
        await asyncio.sleep(0.02)
