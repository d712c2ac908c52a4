"""Load scenarios: how many simulated users at each moment, and what happens when.

- steady: a constant, moderate crowd the default platform (2 workers) serves well.
- launch: the crowd ramps up over 75 s to far beyond what 2 workers can serve;
  queueing then drives p95 latency and the request queue up.
- incident: steady, and after 30 s an error burst with a slow database
  (through ``POST /admin/fault``, which needs the admin token).

``time_scale`` shrinks every scenario time (ramp, fault, bot interval) so a
test can play a scenario in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class Scenario:
    name: str
    base_users: int
    peak_users: int
    ramp_start_s: float = 0.0
    ramp_seconds: float = 0.0
    fault_at_s: float | None = None
    fault: Mapping[str, Any] = field(default_factory=dict)
    bot_interval_s: float = 30.0

    def users_at(self, elapsed: float) -> int:
        """Simulated users that should be active ``elapsed`` seconds into the run."""
        if self.peak_users <= self.base_users or elapsed <= self.ramp_start_s:
            return self.base_users
        if self.ramp_seconds <= 0:
            return self.peak_users
        share = min(1.0, (elapsed - self.ramp_start_s) / self.ramp_seconds)
        return round(self.base_users + share * (self.peak_users - self.base_users))


SCENARIOS: dict[str, Scenario] = {
    "steady": Scenario("steady", base_users=12, peak_users=12),
    "launch": Scenario("launch", base_users=10, peak_users=160, ramp_start_s=5.0, ramp_seconds=75.0),
    "incident": Scenario("incident", base_users=12, peak_users=12, fault_at_s=30.0,
                         fault={"error_rate": 0.3, "db_delay_ms": 250, "duration_s": 60}),
}


def get_scenario(name: str, users: int | None = None, time_scale: float = 1.0) -> Scenario:
    """The named scenario, optionally with another base crowd and compressed in time."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    scenario = SCENARIOS[name]
    if users is not None:
        if users < 1:
            raise ValueError("users must be at least 1")
        peak = max(users, round(scenario.peak_users * users / scenario.base_users))
        scenario = replace(scenario, base_users=users, peak_users=peak)
    if time_scale != 1.0:
        fault = dict(scenario.fault)
        if "duration_s" in fault:
            fault["duration_s"] = max(1, round(fault["duration_s"] * time_scale))
        scenario = replace(
            scenario, ramp_start_s=scenario.ramp_start_s * time_scale,
            ramp_seconds=scenario.ramp_seconds * time_scale,
            fault_at_s=None if scenario.fault_at_s is None else scenario.fault_at_s * time_scale,
            fault=fault, bot_interval_s=scenario.bot_interval_s * time_scale)
    return scenario
