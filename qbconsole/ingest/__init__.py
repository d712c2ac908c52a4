"""The ingest endpoint: real-user-monitoring, security and metric events over HTTP.

``IngestServer(store, token=...)`` serves ``POST /v1/events`` (JSON or NDJSON,
bearer token) on 127.0.0.1; the event schema is in :mod:`qbconsole.ingest.events`,
timestamps and counters in :mod:`qbconsole.ingest.recorder`.
"""

from qbconsole.ingest.errors import Rejected
from qbconsole.ingest.events import Item, validate_event, validate_events
from qbconsole.ingest.server import EVENTS_PATH, HEALTH_PATH, IngestServer

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "IngestServer", "Item", "Rejected", "validate_event", "validate_events"]
