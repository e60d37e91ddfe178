"""Pacing, with times handed in."""

from __future__ import annotations

import random

from rcwebhook.delivery.pacing import WindowLimiter


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


def test_posts_before_a_restart_count_against_the_window():
    limiter = WindowLimiter(3, 60.0, sent=[100.0, 101.0, 102.0])
    assert limiter.next_slot(103.0) >= 160.0


def test_reconfigure_takes_the_new_limit_at_once():
    limiter = WindowLimiter(10, 60.0)
    for when in (0.0, 1.0, 2.0):
        limiter.record(when)
    limiter.reconfigure(2, 60.0)
    assert limiter.next_slot(3.0) >= 61.0
    limiter.reconfigure(0, 0.0)
    assert limiter.next_slot(3.0) == 3.0


def test_a_post_slow_to_arrive_does_not_let_the_next_window_start_early(start_daemon):
    """Rocket.Chat counts posts when they arrive, in fixed windows opened by the first arrival. The first
    post here takes 0.3 s to arrive, so its window opens 0.3 s late: timed from when it was sent, the
    fourth post went out 0.05 s after the first's window had closed by rcwebhook's clock, and arrived
    inside Rocket.Chat's (a 429 in the fault suite's storm)."""
    import threading

    from rcwebhook.delivery.transport import Answer
    from tests.delivery.test_deliverer import SteppedClock

    arrivals, lock = [], threading.Lock()
    clock = SteppedClock(skip_timers=True)  # the pacing waits pass at once; the arrivals are timed by it

    def transport(url, payload, timeout):
        if not arrivals:
            clock.advance(0.3)  # the network: the first post is slow to arrive
        with lock:
            arrivals.append(clock.monotonic())
        return Answer(200, headers={})

    daemon = start_daemon(transport=transport, ROCKETCHAT_WEBHOOK_WARNING="https://chat.example.com/hooks/a/tok",
                          ROCKETCHAT_RATE_LIMIT="3/1", THREADS="false")
    clock.drive(daemon)
    for i in range(7):
        alert = {"status": "firing", "labels": {"alertname": f"A{i}", "severity": "critical"},
                 "startsAt": "2026-01-01T00:00:00Z", "fingerprint": f"f{i}"}
        status, _, body = daemon.post_json({"version": "4", "groupKey": f"g{i}", "status": "firing",
                                            "alerts": [alert]})
        assert status == 200, body
    window_start, count = None, 0
    for t in arrivals:
        if window_start is None or t >= window_start + 1.0:
            window_start, count = t, 0
        count += 1
        assert count <= 3, [round(a - arrivals[0], 3) for a in arrivals]
    assert len(arrivals) == 7
