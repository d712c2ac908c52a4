"""The demo's A/B test: the wording of the bid button.

A visit that reaches an open auction it could bid on is one unit of the
experiment: it asks the ingest endpoint's ``POST /v1/assign`` for its variant
(as a real front end would; that records the exposure) and then decides
whether to click "bid" with the crowd's usual probability, times
``TRUE_LIFT`` in the treatment. A click is sent as the experiment's
``bid_click`` event. So the treatment's true relative conversion lift is
exactly +8 %, and a long demo run shows the analysis moving toward "ship".
"""

from __future__ import annotations

from typing import Any

import httpx

NAME = "bid_button_wording"
EVENT = "bid_click"
TRUE_LIFT = 1.08

# The experiment as the demo's rules.yaml declares it (synced into the store by the agent).
CONFIG: dict[str, Any] = {
    "name": NAME,
    "description": 'Bid button says "Place bid" (control) or "Bid now — it only takes a second" (treatment)',
    "variants": ["control", "treatment"],
    "split": [50, 50],
    "metrics": {"conversion": EVENT},
    "duration": "7d",
    "start": True,
}


class BidButtonTest:
    """Assigns units through the ingest endpoint; ``None`` variant when the experiment is off."""

    def __init__(self, ingest: str | None, token: str | None) -> None:
        self.url = f"{ingest.rstrip('/')}/v1/assign" if ingest and token else None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client: httpx.AsyncClient | None = None
        self.off = self.url is None
        self.assigned = 0

    async def variant(self, unit: str) -> str | None:
        if self.off:
            return None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=3.0, trust_env=False)
        try:
            reply = await self._client.post(self.url, json={"experiment": NAME, "user": unit},
                                            headers=self._headers)
        except httpx.HTTPError:
            return None  # the ingest is not up yet: this unit is simply not in the experiment
        if reply.status_code in (404, 409):  # no such experiment, or not running: stop asking
            self.off = reply.status_code == 404
            return None
        if reply.status_code != 200:
            return None
        self.assigned += 1
        return reply.json().get("variant")

    @staticmethod
    def click_probability(base: float, variant: str | None) -> float:
        return min(1.0, base * TRUE_LIFT) if variant == "treatment" else base

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
