"""The demo's bid-button experiment: units are assigned through the real ingest endpoint,
exposures are recorded, and the treatment's click probability is exactly 8 % higher."""

from __future__ import annotations

import asyncio
import time

import pytest

from qbconsole.demo import experiment as bid_button
from qbconsole.experiments import lifecycle
from qbconsole.experiments.model import spec_from_config
from qbconsole.ingest import IngestServer
from qbconsole.store import Store

TOKEN = "demo-test-token"


@pytest.fixture
def ingest(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    spec, start = spec_from_config(bid_button.CONFIG)
    assert start is True
    store.transaction(lambda c: lifecycle.create(c, spec, "test", int(time.time() * 1000), start=True))
    server = IngestServer(store, token=TOKEN, rate=10_000)
    server.start()
    yield server, store
    server.stop()
    store.close()


def test_true_lift_is_eight_percent():
    assert bid_button.BidButtonTest.click_probability(0.35, "treatment") == pytest.approx(0.35 * 1.08)
    assert bid_button.BidButtonTest.click_probability(0.35, "control") == 0.35
    assert bid_button.BidButtonTest.click_probability(0.35, None) == 0.35


def test_units_are_assigned_and_exposed_through_the_ingest_endpoint(ingest):
    server, store = ingest
    test = bid_button.BidButtonTest(server.url, TOKEN)

    async def assign_all():
        try:
            return [await test.variant(f"unit-{i}") for i in range(400)]
        finally:
            await test.close()

    variants = asyncio.run(assign_all())
    assert set(variants) == {"control", "treatment"}
    assert 140 < variants.count("treatment") < 260
    exposed = store.read().execute("SELECT count(*) FROM exposures").fetchone()[0]
    assert exposed == 400


def test_no_experiment_means_no_variant(tmp_path):
    store = Store.open(tmp_path / "empty.db")
    server = IngestServer(store, token=TOKEN)
    server.start()
    test = bid_button.BidButtonTest(server.url, TOKEN)

    async def ask():
        try:
            return await test.variant("u1")
        finally:
            await test.close()

    try:
        assert asyncio.run(ask()) is None
        assert test.off, "a 404 (no such experiment) stops further assignment calls"
        assert bid_button.BidButtonTest(None, None).off
    finally:
        server.stop()
        store.close()
