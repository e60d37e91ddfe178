"""Coalescing under a small Message_MaxAllowedSize: a storm of single-alert notifications is merged into
few posts, the merged headlines shortened (the alert-view link first, then the labels, then the summary)
rather than split into one post per alert."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.rocketchat_standin import RocketChatStandin

EXTERNAL_URL = "http://alertmanager.monitoring.example.com:9093"


def storm_alert(i: int) -> dict:
    return {"version": "4", "groupKey": f'{{}}:{{alertname="DiskAlmostFull{i:02d}"}}', "status": "firing",
            "receiver": "rocketchat", "externalURL": EXTERNAL_URL,
            "groupLabels": {"alertname": f"DiskAlmostFull{i:02d}"},
            "alerts": [{"status": "firing", "fingerprint": f"fp{i:02d}",
                        "labels": {"alertname": f"DiskAlmostFull{i:02d}", "severity": "warning",
                                   "instance": f"db-{i:02d}.example.com:9100", "job": "node"},
                        "annotations": {"summary": f"Disk /var on db-{i:02d} is 91% full"},
                        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))}]}


def test_a_storm_under_a_400_character_limit_and_2_posts_a_window_goes_out_in_at_most_3_posts(start_daemon):
    # Rocket.Chat's 2 posts per 10 s, scaled to 2 per second on both sides: the posts made do not depend
    # on the window's length, only the time taken does.
    with RocketChatStandin(rate_limit=2, rate_window=1.0, max_message_size=400) as rocketchat:
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"),
                              ROCKETCHAT_RATE_LIMIT="2/1", DELIVERY_DEADLINE="30")
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: daemon.post_json(storm_alert(i))[0], range(12)))
        assert answers == [200] * 12
        posts = rocketchat.messages("warning")
        shown = sorted(a["title"] for m in posts for a in m["attachments"])
        assert shown == sorted(f"DiskAlmostFull{i:02d}: Disk /var on db-{i:02d} is 91% full" for i in range(12))
        assert len(posts) <= 3, [m["text"] for m in posts]  # before: 12, one alert each
        # What the headlines left out is still in each alert's attachment.
        for post in posts:
            for attachment in post["attachments"]:
                fields = {f["title"]: f["value"] for f in attachment.get("fields", [])}
                number = attachment["title"][len("DiskAlmostFull"):][:2]
                assert f"instance=db-{number}" in post["text"] or fields["instance"] == f"db-{number}.example.com:9100"


def test_headlines_are_not_shortened_while_they_fit(start_daemon):
    with RocketChatStandin() as rocketchat:
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"), ROCKETCHAT_RATE_LIMIT="2/1")
        with ThreadPoolExecutor(12) as pool:
            assert list(pool.map(lambda i: daemon.post_json(storm_alert(i))[0], range(12))) == [200] * 12
        for post in rocketchat.messages("warning"):
            for line in post["text"].split("\n"):
                assert line.startswith(":warning: [FIRING:1] [DiskAlmostFull") and f"]({EXTERNAL_URL}/#/alerts?" in line
                assert " instance=db-" in line and " job=node — Disk /var on db-" in line
