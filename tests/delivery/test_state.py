"""The state in STATE_DIR as a user meets it: bounded whatever clients send, never on an answer's path,
noticed when its file goes, and kept across restarts (README "State")."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any, Dict, List

from tests.conftest import make_settings
from tests.faults import FIRING, RESOLVED, alert_item, notification, shown_states, wait_until, whole_second
from tests.delivery.test_deliverer import SteppedClock, one_alert


def payload(name: str, status: str, starts, group_key: str = "", ends=None, **labels: str) -> Dict[str, Any]:
    body = notification([alert_item(name, "critical", status, starts, ends, **labels)], name)
    if group_key:
        body["groupKey"] = group_key
    return body


def shows(body: Dict[str, Any]) -> List[tuple]:
    return [(s.name, s.status) for s in shown_states(body)]


def critical_only(rocketchat, **values: str) -> Dict[str, str]:
    """Settings with one hook, critical, where every alert goes, unpaced; and `values`."""
    return dict(ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.add_hook("critical"), DEFAULT_SEVERITY="critical",
                ROCKETCHAT_RATE_LIMIT="0", **values)


def restart(start_daemon, daemon, **values: str):
    """Stop `daemon` as the service stops (its state written and closed) and start another with `values`."""
    daemon.stop()
    return start_daemon(**values)


# --- nothing a client sends grows the state with its size ----------------------------------------------


def test_huge_group_keys_cost_a_digest_on_disk_and_their_threads_survive_a_restart(start_daemon, rocketchat,
                                                                                    tmp_path):
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path))
    daemon = start_daemon(**values)
    starts = whole_second(-60)
    keys = [f"{{}}:{{group=\"g{i}\"}}" + "<" * 1_000_000 for i in range(12)]
    for i, key in enumerate(keys):
        status, _, body = daemon.post_json(payload(f"Huge{i}", FIRING, starts, key))
        assert status == 200, body
    roots = rocketchat.message_ids("critical")
    assert len(roots) == 12 and all(roots)
    daemon = restart(start_daemon, daemon, **values)
    database = tmp_path / "state.sqlite3"
    size = database.stat().st_size + (tmp_path / "state.sqlite3-wal").stat().st_size
    assert size < 1_000_000, f"{size} bytes for 12 groupKeys of 1 MB"

    status, _, body = daemon.post_json(payload("Huge5", RESOLVED, starts, keys[5], starts + timedelta(seconds=30)))
    assert status == 200, body
    resolution = rocketchat.messages("critical")[-1]
    assert shows(resolution) == [("Huge5", RESOLVED)]
    assert resolution.get("tmid") == roots[5]  # the thread was found again by its groupKey's digest


# --- the store is never on an answer's path ---------------------------------------------------------------


def test_a_database_locked_by_another_process_delays_no_answer(start_daemon, rocketchat, tmp_path):
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path))
    daemon = start_daemon(**values, MAX_CONNECTIONS="100")
    starts = whole_second(-60)
    assert daemon.post_json(payload("Before", FIRING, starts))[0] == 200
    holder = sqlite3.connect(str(tmp_path / "state.sqlite3"), isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        statuses: List[int] = []
        lock = threading.Lock()

        def send(i: int) -> None:
            status = daemon.post_json(payload(f"Locked{i}", FIRING, starts), timeout=30)[0]
            with lock:
                statuses.append(status)

        began = time.monotonic()
        senders = [threading.Thread(target=send, args=(i,)) for i in range(60)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
        took = time.monotonic() - began
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert statuses == [200] * 60
    assert took < 3.0, f"60 notifications took {took:.1f}s with the database locked"
    assert len(rocketchat.messages("critical")) >= 2
    # Once the lock is gone, what waited is written.
    daemon = restart(start_daemon, daemon, **values)
    count = len(rocketchat.messages("critical"))
    assert daemon.post_json(payload("Locked7", FIRING, starts))[0] == 200
    assert len(rocketchat.messages("critical")) == count  # posted before the restart: not posted again


def test_a_deleted_database_is_noticed_made_anew_and_keeps_what_was_posted(start_daemon, rocketchat, tmp_path,
                                                                          logs):
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path), DEDUP_WINDOW="60")
    daemon = start_daemon(**values)
    starts = whole_second(-60)
    assert daemon.post_json(payload("BeforeDelete", FIRING, starts))[0] == 200
    database = tmp_path / "state.sqlite3"
    wait_until(database.exists, "the database")
    database.unlink()
    assert daemon.post_json(payload("AfterDelete", FIRING, starts))[0] == 200
    errors = wait_until(lambda: [line for line in logs.lines(logging.ERROR) if "was deleted" in line],
                        "the error about the deleted database")
    assert len(errors) == 1 and str(database) in errors[0]

    def saved() -> List[str]:
        if not database.exists():
            return []
        with sqlite3.connect(str(database), timeout=5) as db:
            return sorted(row[0] for row in db.execute("SELECT alert FROM alert_state"))

    wait_until(lambda: len(saved()) == 2, "both alerts' states in the new file")
    daemon = restart(start_daemon, daemon, **values)
    count = len(rocketchat.messages("critical"))
    for name in ("BeforeDelete", "AfterDelete"):  # Alertmanager's retries of what was posted
        assert daemon.post_json(payload(name, FIRING, starts))[0] == 200
    assert len(rocketchat.messages("critical")) == count


# --- what was posted survives a restart, whichever thread saves first and whenever the stop comes ----------


def test_a_reminder_after_a_restart_is_posted_whichever_thread_queues_its_write_first(start_daemon, rocketchat,
                                                                                      tmp_path):
    # Two threads write an alert's row: the courier when Rocket.Chat accepts the post (not acknowledged yet),
    # the request's thread when it answers Alertmanager 200 (acknowledged). The courier's write is held here
    # until the request's has been queued, if the request's can be queued first (at most 1 s): the row
    # written last must still say acknowledged, or the restarted daemon takes the reminder for a copy.
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path))
    daemon = start_daemon(**values)
    store = daemon.server.deliverer.depot.store
    acknowledgement_queued = threading.Event()
    queue = store.save_states

    def save_states(rows) -> None:
        rows = list(rows)
        if rows and all(confirmed_at == 0.0 for *_, confirmed_at in rows):  # the courier's
            acknowledgement_queued.wait(1.0)
        elif rows:
            acknowledgement_queued.set()
        queue(rows)

    store.save_states = save_states
    assert daemon.post_json(one_alert("Remind"))[0] == 200
    daemon = restart(start_daemon, daemon, **values)
    clock = SteppedClock().drive(daemon)
    clock.advance(120.0)  # later than DEDUP_WINDOW: Alertmanager's repeat_interval, not a copy
    status, _, body = daemon.post_json({**one_alert("Remind"), "notification_reason": "repeat interval elapsed"})
    assert status == 200, body
    assert [m["attachments"][0]["title"] for m in rocketchat.messages("critical")] == ["Remind", "Remind"]


def test_a_post_rocketchat_answers_during_the_stop_is_saved_and_not_posted_again(start_daemon, rocketchat,
                                                                                  tmp_path):
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path), DELIVERY_DEADLINE="1")
    daemon = start_daemon(**values)
    rocketchat.fail_next("critical", 1, mode="slow", delay=2.5)  # posted at once, answered 200 2.5 s later
    assert daemon.post_json(one_alert("Slow"))[0] == 503  # DELIVERY_DEADLINE passed: Alertmanager retries
    assert len(rocketchat.messages("critical")) == 1
    daemon = restart(start_daemon, daemon, **values)  # the stop comes while Rocket.Chat answers
    status, _, body = daemon.post_json(one_alert("Slow"))  # Alertmanager's retry, after the restart
    assert status == 200, body
    assert len(rocketchat.messages("critical")) == 1


def test_a_stop_waits_for_a_post_being_answered_only_so_long_and_only_once(start_daemon, rocketchat, tmp_path):
    daemon = start_daemon(**critical_only(rocketchat, STATE_DIR=str(tmp_path), DELIVERY_DEADLINE="1",
                                          DELIVERY_TIMEOUT="30"))
    rocketchat.fail_next("critical", 1, mode="stall")  # never answered, until released
    try:
        assert daemon.post_json(one_alert("Stalled"))[0] == 503
        timings = []
        for _ in range(2):  # the server's close, then the service's (or the other way round)
            began = time.monotonic()
            daemon.server.deliverer.close(wait=0.5)
            timings.append(time.monotonic() - began)
    finally:
        rocketchat.release_stalled()
    assert 0.5 <= timings[0] < 2.0, timings  # waited its bound for the post Rocket.Chat holds, then went on
    assert timings[1] < 0.25, timings  # closed already: no second wait


# --- a reload that changes STATE_DIR moves the state there -------------------------------------------------


def reloadable(daemon, loader_settings):
    from rcwebhook.service import Service

    service = Service(lambda: (loader_settings(), []), {})
    service.server = daemon.server
    return service


def test_a_reload_that_changes_state_dir_keeps_the_state_in_the_new_one(start_daemon, rocketchat, tmp_path, logs):
    values = critical_only(rocketchat)
    first, second = tmp_path / "first", tmp_path / "second"
    daemon = start_daemon(STATE_DIR=str(first), **values)
    starts = whole_second(-60)
    assert daemon.post_json(payload("BeforeReload", FIRING, starts))[0] == 200
    service = reloadable(daemon, lambda: make_settings(PORT="0", STATE_DIR=str(second), **values))
    assert service.reload() is True
    assert daemon.server.settings.state_dir == str(second)
    assert daemon.post_json(payload("AfterReload", FIRING, starts))[0] == 200
    count = len(rocketchat.messages("critical"))
    daemon = restart(start_daemon, daemon, STATE_DIR=str(second), **values)
    for name in ("BeforeReload", "AfterReload"):  # Alertmanager's retries of what was posted
        assert daemon.post_json(payload(name, FIRING, starts))[0] == 200
    assert len(rocketchat.messages("critical")) == count
    assert any(f"kept in {second}" in line for line in logs.lines(logging.INFO))


def test_a_reload_to_an_unusable_state_dir_is_refused_and_names_it(start_daemon, rocketchat, tmp_path, logs):
    values = critical_only(rocketchat)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    daemon = start_daemon(STATE_DIR=str(tmp_path / "state"), **values)
    service = reloadable(daemon, lambda: make_settings(PORT="0", STATE_DIR=str(blocker / "state"), **values))
    assert service.reload() is False
    assert daemon.server.settings.state_dir == str(tmp_path / "state")
    assert any(line.startswith("Reload refused: STATE_DIR=") for line in logs.lines(logging.ERROR))


# --- once and in order beyond the ledger's capacity ---------------------------------------------------------


def many(prefix: str, count: int, status: str, starts, ends=None) -> Dict[str, Any]:
    alerts = [alert_item(f"{prefix}{i}", "critical", status, starts, ends, instance=f"host{i}") for i in range(count)]
    return notification(alerts, prefix)


def test_resent_resolutions_and_late_firing_copies_of_forgotten_alerts_post_nothing(start_daemon, rocketchat,
                                                                                   tmp_path, monkeypatch):
    from rcwebhook.delivery import ledger

    monkeypatch.setattr(ledger, "CAPACITY", 100)  # the ledger holds 100 alerts whole; 2,000 pass through it
    monkeypatch.setattr(ledger, "FRESH_LIMIT", 64, raising=False)
    values = critical_only(rocketchat, STATE_DIR=str(tmp_path), DEDUP_WINDOW="60", THREADS="false")
    daemon = start_daemon(**values)
    starts = whole_second(-600)
    ends = whole_second(-30)
    groups = [f"G{g}x" for g in range(20)]
    for group in groups:
        assert daemon.post_json(many(group, 100, FIRING, starts))[0] == 200
    for group in groups:
        assert daemon.post_json(many(group, 100, RESOLVED, starts, ends))[0] == 200
    posted = len(rocketchat.messages("critical"))
    assert len(daemon.server.deliverer.depot.ledger.entries) < 200

    for group in groups:  # Alertmanager re-sends the resolutions: all were posted already
        assert daemon.post_json(many(group, 100, RESOLVED, starts, ends))[0] == 200
    stale = many(groups[0], 100, FIRING, starts)
    stale["externalURL"] = "http://alertmanager-2.example.com"  # a lagging HA peer's stale copies
    assert daemon.post_json(stale)[0] == 200
    assert len(rocketchat.messages("critical")) == posted

    daemon = restart(start_daemon, daemon, **values)
    for group in groups[:3]:
        assert daemon.post_json(many(group, 100, RESOLVED, starts, ends))[0] == 200
    assert len(rocketchat.messages("critical")) == posted


# --- a re-fire is posted, an HA peer's stale copy is not ------------------------------------------------------


def test_firing_again_with_the_old_startsat_from_the_resolutions_sender_is_posted(start_daemon, rocketchat):
    daemon = start_daemon(**critical_only(rocketchat, DEDUP_WINDOW="60"))
    clock = SteppedClock().drive(daemon)
    starts = whole_second(-600)
    ends = whole_second(-5)
    assert daemon.post_json(payload("Refire", FIRING, starts))[0] == 200
    assert daemon.post_json(payload("Refire", RESOLVED, starts, ends=ends))[0] == 200
    # Alertmanager resolved it by timeout, then heard from its Prometheus again and says so at its group's next
    # notification (group_interval later, here 10 s): firing with the same startsAt, well within DEDUP_WINDOW.
    clock.advance(10.0)
    assert daemon.post_json(payload("Refire", FIRING, starts))[0] == 200
    assert [shows(body) for body in rocketchat.messages("critical")] == [
        [("Refire", FIRING)], [("Refire", RESOLVED)], [("Refire", FIRING)]]


def test_a_stale_firing_copy_from_another_peer_after_the_resolution_is_not_posted(start_daemon, rocketchat):
    daemon = start_daemon(**critical_only(rocketchat, DEDUP_WINDOW="60"))
    starts = whole_second(-600)
    ends = whole_second(-5)
    lagging = payload("Stale", FIRING, starts)
    lagging["externalURL"] = "http://alertmanager-2.example.com"
    for body in (payload("Stale", FIRING, starts), payload("Stale", RESOLVED, starts, ends=ends), lagging):
        assert daemon.post_json(body)[0] == 200
    assert [shows(body) for body in rocketchat.messages("critical")] == [[("Stale", FIRING)], [("Stale", RESOLVED)]]


def test_a_stale_firing_copy_from_another_peer_is_not_posted_after_a_resolution_sent_a_group_interval_late(
        start_daemon, rocketchat):
    # Alertmanager sends a resolution at the group's next flush: its endsAt is up to group_interval (5 min by
    # default) old when it comes. A lagging peer's copy right behind it was taken for a re-fire and posted.
    daemon = start_daemon(**critical_only(rocketchat, DEDUP_WINDOW="60"))
    starts = whole_second(-600)
    ends = whole_second(-240)
    lagging = payload("Stale", FIRING, starts)
    lagging["externalURL"] = "http://alertmanager-2.example.com"
    for body in (payload("Stale", FIRING, starts), payload("Stale", RESOLVED, starts, ends=ends), lagging):
        assert daemon.post_json(body)[0] == 200
    assert [shows(body) for body in rocketchat.messages("critical")] == [[("Stale", FIRING)], [("Stale", RESOLVED)]]
