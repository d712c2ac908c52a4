"""Routing and timing, as Alertmanager does them; pure functions over alert rows.

* :func:`routes_for`: routes are tried in order; the first that matches wins
  unless it says ``continue: true``, in which case later routes are tried too.
* :func:`silenced_ids`, :func:`inhibited_ids`: alerts that produce no
  notification. An alert is inhibited when a *firing* alert matching an inhibit
  rule's ``source_match`` has the same values of its ``equal`` labels (a missing
  label counts as empty) and the alert matches ``target_match``; as in
  Alertmanager, an alert matching both sides is not inhibited by another that
  does too.
* :func:`decide`: one (route, channel, group) at one tick. A new group waits
  ``group_wait`` before its first notification; after a notification, changes
  (a new firing alert; a resolution when the channel has ``send_resolved``) go
  out no sooner than ``group_interval`` after it; an unchanged firing group is
  sent again every ``repeat_interval``, unless every firing alert in it is
  acknowledged (acknowledgement stops repeats, not the alert). Differences from
  Alertmanager: a change is sent as soon as ``group_interval`` has passed since
  the previous notification, not at the next tick of a fixed flush timer.
* :func:`decide_resend`: the ``alertmanager`` channel kind. An Alertmanager does
  its own grouping and needs firing alerts re-posted before their ``endsAt``,
  so it gets Prometheus's behaviour instead: changes at once, and the firing
  set again every ``resend_interval`` (acknowledged or not).
* :func:`escalations_due`: a firing, unacknowledged alert whose firing age
  passed a level's ``after`` and whose ``escalation_level`` is below it.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

from qbconsole.notify.config import InhibitRule, Route
from qbconsole.store.alerts import AlertRow, Silence

NOTIFY, REPEAT, RESEND = "notify", "repeat", "resend"


def routes_for(routes: Sequence[Route], labels) -> list[Route]:
    matched = []
    for route in routes:
        if route.matches(labels):
            matched.append(route)
            if not route.continue_:
                break
    return matched


def silenced_ids(alerts: Iterable[AlertRow], silences: Sequence[Silence]) -> set[int]:
    return {a.id for a in alerts if any(s.matches(a.labels) for s in silences)}


def _all(matchers, labels) -> bool:
    return all(m.matches(labels) for m in matchers)


def inhibited_ids(alerts: Sequence[AlertRow], rules: Sequence[InhibitRule]) -> set[int]:
    muted: set[int] = set()
    firing = [a for a in alerts if a.state == "firing"]
    for rule in rules:
        sources = [s for s in firing if _all(rule.source, s.labels)]
        if not sources:
            continue
        for target in alerts:
            if target.id in muted or not _all(rule.target, target.labels):
                continue
            both = _all(rule.source, target.labels)
            for s in sources:
                if s.id == target.id or (both and _all(rule.target, s.labels)):
                    continue
                if all(s.labels.get(k, "") == target.labels.get(k, "") for k in rule.equal):
                    muted.add(target.id)
                    break
    return muted


def group_labels(route: Route, labels) -> dict[str, str]:
    if route.group_by is None:
        return dict(sorted(labels.items()))
    return {k: labels[k] for k in sorted(route.group_by) if k in labels}


def group_key(route: Route, glabels) -> str:
    """Alertmanager's form: ``{}/{<route matchers>}:{<group labels>}``."""
    path = ",".join(str(m) for m in route.matchers)
    group = ",".join(f'{k}="{v}"' for k, v in sorted(glabels.items()))
    return f"{{}}/{{{path}}}:{{{group}}}"


class GroupState(NamedTuple):
    """What was last sent for one (route, channel, group); alert ids as frozensets."""

    first_seen: int | None = None   # when a not-yet-notified group was first seen firing
    last_sent: int | None = None
    firing: frozenset[int] = frozenset()    # firing alerts told in the last notification
    resolved: frozenset[int] = frozenset()  # resolved alerts already dealt with
    seq: int = 0                            # notifications planned so far


class Decision(NamedTuple):
    send: str | None                  # None, NOTIFY, REPEAT or RESEND
    alerts: tuple[AlertRow, ...]      # the notification's content when sending
    state: GroupState


def _sent(st: GroupState, kind: str, content: list[AlertRow], firing: set[int], resolved: set[int],
          now: int) -> Decision:
    return Decision(kind, tuple(content), GroupState(None, now, frozenset(firing), frozenset(resolved),
                                                     st.seq + 1))


def decide(state: GroupState | None, firing: Sequence[AlertRow], resolved: Sequence[AlertRow], *,
           route: Route, send_resolved: bool, acknowledged: set[int], now: int) -> Decision:
    """Whether a group's channel gets a notification now, with what, and the state after."""
    st = state or GroupState()
    f_ids = {a.id for a in firing}
    r_ids = {a.id for a in resolved}
    new_resolved = [a for a in resolved if a.id not in st.resolved]
    told_resolved = new_resolved if send_resolved else []
    if not st.firing:  # a new group, or one whose last notification had nothing firing
        if not f_ids:
            return Decision(None, (), st._replace(first_seen=None, resolved=st.resolved & r_ids))
        first = now if st.first_seen is None else st.first_seen
        if now < first + route.group_wait_ms:
            return Decision(None, (), st._replace(first_seen=first))
        return _sent(st, NOTIFY, [*firing, *told_resolved], f_ids, r_ids, now)
    if st.last_sent is not None and now < st.last_sent + route.group_interval_ms:
        return Decision(None, (), st)
    if f_ids - st.firing:
        return _sent(st, NOTIFY, [*firing, *told_resolved], f_ids, r_ids, now)
    if not f_ids:
        if not new_resolved:  # the firing ones were silenced, inhibited or removed: say nothing
            return Decision(None, (), st)
        if send_resolved:
            return _sent(st, NOTIFY, new_resolved, set(), r_ids, now)
        return Decision(None, (), st._replace(firing=frozenset(), resolved=frozenset(r_ids)))
    if told_resolved:
        return _sent(st, NOTIFY, [*firing, *told_resolved], f_ids, r_ids, now)
    if st.last_sent is not None and now >= st.last_sent + route.repeat_interval_ms \
            and f_ids - acknowledged:
        return _sent(st, REPEAT, list(firing), f_ids, r_ids, now)
    return Decision(None, (), st)


def decide_resend(state: GroupState | None, firing: Sequence[AlertRow], resolved: Sequence[AlertRow], *,
                  resend_ms: int, now: int) -> Decision:
    """Post to an Alertmanager: at once on change, and the firing set every ``resend_ms``."""
    st = state or GroupState()
    f_ids = {a.id for a in firing}
    r_ids = {a.id for a in resolved}
    new_resolved = [a for a in resolved if a.id not in st.resolved and a.id in st.firing]
    changed = bool(f_ids - st.firing) or bool(new_resolved)
    due = st.last_sent is None or now >= st.last_sent + resend_ms
    if changed or (f_ids and due):
        return _sent(st, RESEND, [*firing, *new_resolved], f_ids, r_ids, now)
    return Decision(None, (), st._replace(firing=frozenset(f_ids & st.firing), resolved=st.resolved & r_ids))


def escalations_due(route: Route, alert: AlertRow, now: int) -> list[int]:
    """Escalation levels (1-based) of ``route`` this alert has reached and not yet been sent."""
    if alert.state != "firing" or alert.fired_at is None or alert.acknowledged(now):
        return []
    age = now - alert.fired_at
    return [i for i, level in enumerate(route.escalation, 1)
            if i > alert.escalation_level and age >= level.after_ms]
