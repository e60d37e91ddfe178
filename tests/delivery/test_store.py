"""The state database: kept across restarts, bounded, and never a single point of failure."""

from __future__ import annotations

import logging
import sqlite3
import time

from rcwebhook.delivery import store
from rcwebhook.delivery.ledger import State
from rcwebhook.delivery.threads import Row, Threads, to_row

NOW = 1_800_000_000.0
FIRING = State("firing", NOW - 60, 0.0, NOW - 60)


def open_store(path, **kwargs) -> store.Store:
    return store.Store(str(path), wall=lambda: NOW, **kwargs)


def test_states_threads_and_posts_survive_a_reopen(tmp_path):
    first = open_store(tmp_path)
    first.save_states([("critical", "fp1", FIRING, NOW, NOW + 1)])
    first.save_threads([Row("hook", "group", "root-id", NOW - 60, NOW, '["critical/fp1"]')], [])
    first.record_post("hook", NOW - 5)
    first.close()
    again = open_store(tmp_path)
    assert again.load_states() == [("critical", "fp1", FIRING, NOW, NOW + 1)]
    assert again.load_threads(NOW - 3600) == [Row("hook", "group", "root-id", NOW - 60, NOW, '["critical/fp1"]')]
    assert again.recent_posts("hook", NOW - 60) == [NOW - 5]


def test_rows_stay_bounded_while_running(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_STATES", 50)
    monkeypatch.setattr(store, "PRUNE_EVERY", 10)
    db = open_store(tmp_path)
    for i in range(200):
        db.save_states([("critical", f"fp{i}", FIRING, NOW + i, 0.0)])
    kept = db.load_states()
    assert len(kept) <= 60
    assert ("critical", "fp199", FIRING, NOW + 199, 0.0) in kept  # the newest stay


def test_old_entries_are_forgotten_after_their_ttl(tmp_path):
    db = open_store(tmp_path, thread_ttl=3600)
    db.save_states([("critical", "old", FIRING, NOW - store.STATE_TTL - 1, 0.0),
                    ("critical", "new", FIRING, NOW - 10, 0.0)])
    db.save_threads([Row("h", "old", "r1", 0.0, NOW - 3601, "[]"), Row("h", "new", "r2", 0.0, NOW - 10, "[]")], [])
    db.close()
    again = open_store(tmp_path, thread_ttl=3600)
    assert [row[1] for row in again.load_states()] == ["new"]
    assert [row.group for row in again.load_threads(0)] == ["new"]


def test_a_corrupt_file_is_moved_aside_and_a_new_one_started(tmp_path, logs):
    (tmp_path / store.FILE_NAME).write_bytes(b"this is not a database" * 100)
    db = open_store(tmp_path)
    db.save_states([("critical", "fp1", FIRING, NOW, 0.0)])
    assert db.load_states() == [("critical", "fp1", FIRING, NOW, 0.0)]
    aside = list(tmp_path.glob(f"{store.FILE_NAME}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    [error] = logs.lines(logging.ERROR)
    assert "is corrupt" in error and "moved it aside" in error


def test_an_unusable_directory_means_memory_only_with_one_error(tmp_path, logs):
    parent = tmp_path / "a-file"
    parent.write_text("")
    errors = []
    db = open_store(parent / "state", on_error=lambda: errors.append(1))
    db.save_states([("critical", "fp1", FIRING, NOW, 0.0)])
    db.record_post("hook", NOW)
    assert db.load_states() == [] and db.size() == 0
    [error] = logs.lines(logging.ERROR)
    assert "going on with state in memory only" in error and str(parent / "state") in error
    assert errors == [1]


def wait_for(condition, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_locked_database_keeps_changes_waiting_and_writes_them_once_free(tmp_path, logs):
    errors = []
    db = open_store(tmp_path, on_error=lambda: errors.append(1))
    holder = sqlite3.connect(str(tmp_path / store.FILE_NAME), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        db.save_states([("critical", "fp1", FIRING, NOW, 0.0)])
        db.save_states([("critical", "fp2", FIRING, NOW, 0.0)])
        assert time.monotonic() - began < 0.1  # queued, not waited for
        wait_for(lambda: logs.lines(logging.ERROR), "the error about the lock")
        wait_for(lambda: len(errors) >= 2, "a second try")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [error] = logs.lines(logging.ERROR)  # said once, however long it lasts
    assert "is locked by another process" in error and "tried again" in error
    db.save_states([("critical", "fp3", FIRING, NOW, 0.0)])
    assert [row[1] for row in db.load_states()] == ["fp1", "fp2", "fp3"] and not db.failed
    assert any("can be written again" in line for line in logs.lines(logging.WARNING))


def test_changes_beyond_the_queue_bound_are_dropped_and_counted_never_waited_for(tmp_path, logs, monkeypatch):
    monkeypatch.setattr(store, "MAX_QUEUED_BYTES", 2000)
    dropped = []
    db = open_store(tmp_path, on_drop=dropped.append)
    holder = sqlite3.connect(str(tmp_path / store.FILE_NAME), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        for i in range(100):
            db.save_states([("critical", f"fp{i}", FIRING, NOW, 0.0)])
        assert time.monotonic() - began < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 80 <= sum(dropped) < 100
    assert any("cannot keep up" in line and "rcwebhook_state_writes_dropped_total" in line
               for line in logs.lines(logging.ERROR))
    kept = [row[1] for row in db.load_states()]
    assert kept[:2] == ["fp0", "fp1"] and len(kept) == 100 - sum(dropped)


OLD_SCHEMA = """
CREATE TABLE alert_state (
    route TEXT NOT NULL, alert TEXT NOT NULL, status TEXT NOT NULL, starts REAL NOT NULL,
    ends REAL NOT NULL, asof REAL NOT NULL, posted_at REAL NOT NULL, confirmed_at REAL NOT NULL,
    PRIMARY KEY (route, alert));
CREATE INDEX alert_state_age ON alert_state (posted_at);
CREATE TABLE thread (
    hook TEXT NOT NULL, group_key TEXT NOT NULL, root TEXT NOT NULL, started REAL NOT NULL,
    last_post REAL NOT NULL, alerts TEXT NOT NULL, PRIMARY KEY (hook, group_key));
CREATE TABLE hook_post (hook TEXT NOT NULL, sent_at REAL NOT NULL);
CREATE INDEX hook_post_hook ON hook_post (hook, sent_at);
"""


def test_threads_kept_whole_by_an_older_release_are_found_after_the_upgrade(tmp_path):
    big = '{}/{service="' + "x" * 2_000_000 + '"}:{alertname="Big"}'
    old = sqlite3.connect(str(tmp_path / store.FILE_NAME))
    old.executescript(OLD_SCHEMA)
    old.executemany("INSERT INTO thread VALUES (?, ?, ?, ?, ?, ?)",
                    [("hook", '{}:{service="db"}', "root-1", NOW - 60, NOW, '["critical/fp1"]'),
                     ("hook", big, "root-2", NOW - 60, NOW, '["critical/fp2"]')])
    old.execute("INSERT INTO alert_state VALUES ('critical', 'fp1', 'firing', 1, 0, 1, ?, ?)", (NOW, NOW))
    old.commit()
    old.close()
    assert (tmp_path / store.FILE_NAME).stat().st_size > 2_000_000

    db = open_store(tmp_path)
    threads = Threads(3600)
    threads.restore(db.load_threads(NOW - 3600))
    assert threads.get("hook", '{}:{service="db"}', NOW).root == "root-1"
    assert threads.get("hook", big, NOW).root == "root-2"
    assert [row[1] for row in db.load_states()] == ["fp1"]
    db.close()
    assert (tmp_path / store.FILE_NAME).stat().st_size < 100_000  # the space the whole keys took is given back
    again = open_store(tmp_path)  # a second start migrates nothing twice
    assert sorted(row.root for row in again.load_threads(NOW - 3600)) == ["root-1", "root-2"]
    assert all(len(row.group) == 32 for row in again.load_threads(NOW - 3600))


def test_a_thread_of_a_huge_group_key_costs_its_digest_on_disk(tmp_path):
    db = open_store(tmp_path)
    threads = Threads(3600)
    for i in range(20):
        group = f"{i}:" + "<" * 1_000_000
        db.save_threads([to_row(threads.anchor("hook", group, f"root-{i}", NOW - 60, NOW, ["critical/fp"]))], [])
    db.close()
    assert (tmp_path / store.FILE_NAME).stat().st_size < 200_000
    again = Threads(3600)
    again.restore(open_store(tmp_path).load_threads(NOW - 3600))
    assert again.get("hook", "7:" + "<" * 1_000_000, NOW).root == "root-7"
