"""After a hang-up, make sure the console really goes away.

SIGHUP asks the app to exit, which normally takes well under a second. Seen
rarely: with the terminal gone, Textual's shutdown waits on an output thread
that can no longer write, and the process lingers holding the agent's lease,
so no other console takes over. ``start_watchdog`` gives the normal exit
``grace_s`` seconds; after that it stops the agent (which releases the lease)
and ends the process with ``os._exit``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)

GRACE_S = 10.0
AGENT_STOP_S = 3.0


def start_watchdog(agent: object | None, exit_code: int, *, grace_s: float = GRACE_S,
                   exit: Callable[[int], object] = os._exit) -> threading.Event:
    """Start the watchdog thread; setting the returned event calls it off."""
    done = threading.Event()

    def watch() -> None:
        if done.wait(grace_s):
            return
        log.warning("still running %.0f s after the hang-up; releasing the lease and exiting", grace_s)
        if agent is not None:
            stopper = threading.Thread(target=agent.stop, kwargs={"timeout": AGENT_STOP_S},  # type: ignore[attr-defined]
                                       name="qbconsole-hangup-stop", daemon=True)
            stopper.start()
            stopper.join(AGENT_STOP_S + 1.0)
        exit(exit_code)

    threading.Thread(target=watch, name="qbconsole-hangup-watchdog", daemon=True).start()
    return done
