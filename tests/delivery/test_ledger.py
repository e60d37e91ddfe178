"""The ledger of alert states, with times handed in: what is newer, what is owed, what is a copy."""

from __future__ import annotations

from datetime import datetime, timezone

from rcwebhook.messages.notification import Alert
from rcwebhook.delivery.ledger import FIRING, RESOLVED, Context, Item, Ledger, Ticket, observe, sender_tag

T0 = 1_800_000_000.0  # a wall-clock moment, in epoch seconds


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def alert(status: str = "firing", starts: float = T0, ends: float = 0.0, name: str = "A") -> Alert:
    return Alert(status, {"alertname": name}, {}, iso(starts), iso(ends) if ends else "0001-01-01T00:00:00Z",
                 "", f"fp-{name}")


def item(a: Alert, reason: str = "") -> Item:
    return Item("critical", a.fingerprint, a, Context("g", reason=reason))


def offer(ledger: Ledger, a: Alert, now: float, window: float = 60.0, reminder: bool = True):
    ticket = Ticket("critical", (a.name,))
    return ticket, ledger.offer(item(a), ticket, now, window, reminder)


def post_everything(ledger: Ledger, now: float) -> None:
    for entry in list(ledger.ready(["critical"])):
        ledger.accepted(entry, entry.known, now)


PEER_A = sender_tag("10.0.0.1", "http://am-a:9093")
PEER_B = sender_tag("10.0.0.1", "http://am-b:9093")


def test_resolution_is_newer_than_its_firing_whatever_the_arrival_order():
    firing = observe(alert(), None, T0 + 10, 60)
    resolved = observe(alert("resolved", ends=T0 + 5), firing, T0 + 10, 60)
    assert resolved.order > firing.order
    assert observe(alert(), resolved, T0 + 20, 60, PEER_B, (PEER_A,)).order < resolved.order  # a peer's late copy


def test_firing_with_the_old_startsat_from_the_sender_of_the_resolution_is_a_refire():
    resolved = observe(alert("resolved", ends=T0 + 5), None, T0 + 10, 60)
    assert observe(alert(), resolved, T0 + 20, 60, PEER_A, (PEER_A,), T0 + 10).order > resolved.order
    assert observe(alert(), resolved, T0 + 20, 60, PEER_B, (PEER_B, PEER_A), T0 + 10).order > resolved.order
    # Sooner than an Alertmanager sends a group's next notification: its requests overtook one another.
    assert observe(alert(), resolved, T0 + 11, 60, PEER_A, (PEER_A,), T0 + 10).order < resolved.order
    # Who sent what is not known (a resolution restored after a restart): posting is preferred to silence.
    assert observe(alert(), resolved, T0 + 20, 60, PEER_B, ()).order > resolved.order


def test_firing_with_the_old_startsat_long_after_the_resolution_is_a_refire():
    resolved = observe(alert("resolved", ends=T0 + 5), None, T0 + 10, 60)
    assert observe(alert(), resolved, T0 + 5 + 61, 60, PEER_B, (PEER_A,)).order > resolved.order
    assert observe(alert(), resolved, T0 + 5 + 59, 60, PEER_B, (PEER_A,)).order < resolved.order


def test_firing_since_a_later_startsat_is_a_new_occurrence():
    resolved = observe(alert("resolved", ends=T0 + 5), None, T0 + 10, 60)
    assert observe(alert(starts=T0 + 6), resolved, T0 + 7, 60).order > resolved.order


def test_request_waits_for_a_new_state_and_is_settled_by_its_post():
    ledger = Ledger()
    ticket, verdict = offer(ledger, alert(), T0)
    assert verdict.owed and not ticket.done.is_set()
    post_everything(ledger, T0 + 1)
    assert ticket.done.is_set() and ticket.posted_any and ledger.owed_count() == 0


def test_a_retry_after_a_non_2xx_answer_is_never_posted_twice():
    ledger = Ledger()
    ticket, _ = offer(ledger, alert(), T0)
    ledger.release(ticket, T0 + 1, acknowledged=False)  # answered 503 before the post
    post_everything(ledger, T0 + 2)  # nothing: no request vouches for it
    assert ledger.entries[("critical", "fp-A")].posted is None
    retry, _ = offer(ledger, alert(), T0 + 3)
    post_everything(ledger, T0 + 3)
    assert retry.done.is_set()
    ledger.release(retry, T0 + 4, acknowledged=False)
    late, verdict = offer(ledger, alert(), T0 + 3600)  # however long Alertmanager keeps retrying
    assert not verdict.owed and not late.waiting


def test_reminder_after_the_window_is_posted_and_a_copy_within_it_is_not():
    ledger = Ledger()
    ticket, _ = offer(ledger, alert(), T0)
    post_everything(ledger, T0)
    ledger.release(ticket, T0, acknowledged=True)
    _, copy = offer(ledger, alert(), T0 + 30)
    assert copy.copy and not copy.owed
    _, reminder = offer(ledger, alert(), T0 + 61)
    assert reminder.owed


def test_a_group_that_changed_is_no_reminder_of_its_other_alerts():
    ledger = Ledger()
    ticket, _ = offer(ledger, alert(), T0)
    post_everything(ledger, T0)
    ledger.release(ticket, T0, acknowledged=True)
    assert ledger.news(item(alert(name="B")), T0 + 300, 60)
    assert not ledger.news(item(alert()), T0 + 300, 60)
    _, same = offer(ledger, alert(), T0 + 300, reminder=False)
    assert not same.owed


def test_refused_state_is_forgotten_and_tried_again_when_it_comes_again():
    ledger = Ledger()
    ticket, _ = offer(ledger, alert(), T0)
    [entry] = ledger.ready(["critical"])
    ledger.refused(entry, "refused")
    assert ticket.failure == "refused" and ticket.done.is_set() and ledger.owed_count() == 0
    _, verdict = offer(ledger, alert(), T0 + 1)
    assert verdict.owed


def test_states_nobody_carries_are_dropped_after_max_age():
    ledger = Ledger()
    ticket, _ = offer(ledger, alert(), T0)
    ledger.release(ticket, T0, acknowledged=False)
    assert ledger.expire(T0 + 10, max_age=600) == []
    [(entry, state)] = ledger.expire(T0 + 601, max_age=600)
    assert state.status == FIRING and ledger.owed_count() == 0 and len(ledger) == 0


def test_ledger_stays_bounded_and_keeps_what_is_owed():
    ledger = Ledger(capacity=100)
    for i in range(1000):
        ticket, _ = offer(ledger, alert(name=f"A{i}"), T0 + i)
        post_everything(ledger, T0 + i)
        ledger.release(ticket, T0 + i, acknowledged=True)
    assert len(ledger) <= 110
    assert ("critical", "fp-A999") in ledger.entries
    waiting, _ = offer(ledger, alert("resolved", ends=T0 + 2000, name="A999"), T0 + 2000)
    assert ledger.owed_count() == 1 and ledger.entries[("critical", "fp-A999")].known.status == RESOLVED


def test_the_record_of_posted_states_finds_the_newest_and_drops_the_oldest_beyond_its_bound(monkeypatch):
    from rcwebhook.delivery import ledger

    monkeypatch.setattr(ledger, "FRESH_LIMIT", 100)
    monkeypatch.setattr(ledger, "RUN_LIMIT", 400)
    posted = ledger.Posted(max_records=1000)
    firing = ledger.State(FIRING, T0, 0.0, T0)
    resolved = ledger.State(RESOLVED, T0, T0 + 5, T0 + 5)
    for i in range(3000):
        posted.add("critical", f"a{i}", firing, T0 + i)
    for i in range(2900, 3000, 2):  # resolved later: the newer record wins over the one sealed before
        posted.add("critical", f"a{i}", resolved, T0 + 5000, resolver=7)
    posted.seal()
    # Dropped a run at a time: between the bound less one run and the bound.
    assert 600 <= len(posted) <= 1000 and sum(len(run) for _, run in posted.runs) <= 1000 * ledger.RECORD.size
    assert posted.find("critical", "a0") is None  # the oldest went first
    assert posted.find("critical", "a2901") == (firing, T0 + 2901, 0)
    assert posted.find("critical", "a2900") == (resolved, T0 + 5000, 7)
    assert posted.find("warning", "a2900") is None
    again = ledger.Posted(max_records=1000)
    again.restore(posted.runs)
    assert again.find("critical", "a2900") == (resolved, T0 + 5000, 7)


def test_a_huge_time_text_is_not_kept_in_the_cache_of_times():
    from rcwebhook.delivery import ledger

    ledger._cached_epoch.cache_clear()
    for i in range(20):
        observe(alert(starts=T0), None, T0, 60)
        huge = alert()._replace(starts_at=f"{i}" + "9" * 1_000_000)
        assert observe(huge, None, T0, 60).starts == 0.0
    assert ledger._cached_epoch.cache_info().currsize == 1


def test_a_peers_stale_copy_is_told_by_when_the_resolution_came_not_by_its_endsat():
    # Alertmanager sends a resolution at the group's next flush, up to group_interval (5 min by default)
    # after its endsAt: measured from endsAt, a lagging peer's FIRING copy right behind it was a re-fire,
    # posted, and the channel read FIRING for an alert resolved.
    resolved = observe(alert("resolved", ends=T0), None, T0 + 240, 60, PEER_A)
    assert observe(alert(), resolved, T0 + 241, 60, PEER_B, (PEER_A,), T0 + 240).order < resolved.order
    assert observe(alert(), resolved, T0 + 240 + 61, 60, PEER_B, (PEER_A,), T0 + 240).order > resolved.order
