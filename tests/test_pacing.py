"""Pacing and de-duplication memory, with times handed in."""

from __future__ import annotations

import random

from rcwebhook.dedup import RecentPosts, post_key
from rcwebhook.alertmanager import parse
from rcwebhook.pacing import WindowLimiter


def simulate(limiter: WindowLimiter, arrivals):
    """Send each arrival at its earliest slot, in order; return the send times."""
    sent, now = [], 0.0
    for arrival in arrivals:
        now = limiter.next_slot(max(now, arrival))
        limiter.record(now)
        sent.append(now)
    return sent


def test_never_more_than_limit_in_any_window():
    rng = random.Random(7)
    limiter = WindowLimiter(10, 60.0)
    arrivals = sorted(rng.uniform(0, 300) for _ in range(200))
    sent = simulate(limiter, arrivals)
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + 60.0) <= 10


def test_a_burst_spends_half_the_budget_at_once_and_spreads_the_rest():
    sent = simulate(WindowLimiter(10, 60.0), [0.0] * 11)
    assert sent[:5] == [0.0] * 5
    assert sent[5:10] == [6.0, 12.0, 18.0, 24.0, 30.0]
    assert sent[10] == 60.5  # the first post's window, plus the latency margin


def test_rocketchat_fixed_windows_are_never_exceeded():
    """Rocket.Chat's window opens with the first post after the previous one closed."""
    rng = random.Random(11)
    limit, window = 5, 10.0
    sent = simulate(WindowLimiter(limit, window), sorted(rng.uniform(0, 100) for _ in range(120)))
    window_start, count = None, 0
    for t in sent:
        if window_start is None or t >= window_start + window:
            window_start, count = t, 0
        count += 1
        assert count <= limit


def test_zero_limit_means_no_pacing():
    limiter = WindowLimiter(0, 0.0)
    assert simulate(limiter, [0.0] * 100) == [0.0] * 100


def test_recent_posts_expire_after_the_window():
    recent = RecentPosts(window=300)
    recent.add("k", now=1000)
    assert recent.seen("k", 1299.9)
    assert not recent.seen("k", 1300.1)


def test_recent_posts_are_bounded_oldest_first():
    recent = RecentPosts(window=300, capacity=3)
    for i, key in enumerate("abcd"):
        recent.add(key, now=i)
    assert len(recent) == 3
    assert not recent.seen("a", 4) and recent.seen("b", 4) and recent.seen("d", 4)


def test_post_key_changes_with_status_alerts_and_hook():
    def notification(status="firing", starts="2026-01-30T10:00:00Z", fingerprint="f1"):
        return parse(('{"groupKey":"g","status":"%s","alerts":[{"status":"%s","fingerprint":"%s",'
                      '"startsAt":"%s","labels":{}}]}' % (status, status, fingerprint, starts)).encode())

    base = notification()
    key = post_key("h1", base, base.alerts)
    assert key == post_key("h1", notification(), notification().alerts)
    for other in (notification(status="resolved"), notification(starts="2026-01-30T11:00:00Z"),
                  notification(fingerprint="f2")):
        assert post_key("h1", other, other.alerts) != key
    assert post_key("h2", base, base.alerts) != key
