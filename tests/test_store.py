"""The state database: kept across restarts, bounded, and never a single point of failure."""

from __future__ import annotations

import logging
import sqlite3

from rcwebhook import store
from rcwebhook.ledger import State
from rcwebhook.threads import Row

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


def test_a_locked_database_skips_what_it_cannot_save_and_goes_on_after(tmp_path, logs):
    errors = []
    db = open_store(tmp_path, on_error=lambda: errors.append(1))
    holder = sqlite3.connect(str(tmp_path / store.FILE_NAME), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        db.save_states([("critical", "fp1", FIRING, NOW, 0.0)])
        db.save_states([("critical", "fp2", FIRING, NOW, 0.0)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [error] = logs.lines(logging.ERROR)  # said once, however long it lasts
    assert "is locked by another process" in error and len(errors) == 2
    db.save_states([("critical", "fp3", FIRING, NOW, 0.0)])
    assert [row[1] for row in db.load_states()] == ["fp3"] and not db.failed
