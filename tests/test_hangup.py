"""The hang-up watchdog: a console that does not exit after SIGHUP still releases its lease and ends."""

from __future__ import annotations

import threading

from helpers import wait_for

from qbconsole.agent import Agent
from qbconsole.tui.hangup import start_watchdog


class Recorder:
    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.exited: list[int] = []

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()

    def exit(self, code: int) -> None:
        self.exited.append(code)


def test_after_the_grace_period_the_agent_is_stopped_then_the_process_exits():
    agent = Recorder()
    start_watchdog(agent, 129, grace_s=0.05, exit=agent.exit)
    assert wait_for(lambda: agent.exited == [129], 5)
    assert agent.stopped.is_set()


def test_a_normal_exit_calls_the_watchdog_off():
    agent = Recorder()
    done = start_watchdog(agent, 129, grace_s=0.3, exit=agent.exit)
    done.set()
    assert not wait_for(lambda: agent.exited, 0.6)
    assert not agent.stopped.is_set()


def test_the_real_agent_releases_its_lease_before_the_exit(store, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources: []\n")
    agent = Agent(store, rules, heartbeat_s=0.05)
    agent.start()
    assert wait_for(lambda: agent.active, 10)
    leases_at_exit: list[object] = []
    start_watchdog(agent, 129, grace_s=0.05, exit=lambda code: leases_at_exit.append(store.lease_info()))
    assert wait_for(lambda: leases_at_exit, 10)
    assert leases_at_exit[0] is None or leases_at_exit[0].holder != agent.holder
