"""When the integration's user lacks Rocket.Chat's message-impersonate permission, a post naming its sender
(ROCKETCHAT_USERNAME) is refused whole: its alerts are posted again at once without the name, the
operator is told where to grant the permission, and the hook leaves the name out for an hour or until
a reload."""

from __future__ import annotations

import logging

from rcwebhook.delivery.courier import IMPERSONATE_RETRY
from tests.conftest import make_settings
from tests.delivery.test_deliverer import SteppedClock
from tests.messages.test_mentions import alert, metrics, notification, texts, titles

REFUSAL = "error-user-lacks-message-impersonate-permission"


def refusals(daemon, route: str = "critical") -> float:
    return metrics(daemon)[f'rcwebhook_impersonate_refusals_total{{route="{route}"}}']


def hooks(rocketchat, allow_impersonate: bool):
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n, allow_impersonate=allow_impersonate)
            for n in ("critical", "warning", "info")}


def test_a_refused_username_is_posted_again_without_it_logged_counted_and_answered_200(start_daemon, rocketchat,
                                                                                     logs):
    daemon = start_daemon(ROCKETCHAT_USERNAME="Alertmanager", ROCKETCHAT_ICON_EMOJI=":fire:",
                          **hooks(rocketchat, allow_impersonate=False))
    status, _, body = daemon.post_json(notification(alert("DiskFull")))
    assert status == 200 and body["routes"]["critical"]["status"] == "delivered", body
    first, again = rocketchat.requests("critical")
    assert (first["status"], first["body"]["username"]) == (400, "Alertmanager")
    assert again["status"] == 200 and "username" not in again["body"]
    assert again["body"]["icon_emoji"] == ":fire:"  # an emoji needs no permission
    assert again["body"]["attachments"] == first["body"]["attachments"]
    assert titles(rocketchat) == ["DiskFull: DiskFull is bad"]  # posted exactly once
    [error] = logs.lines(logging.ERROR)
    hook = f"/hooks/{rocketchat.integration_id('critical')}/***"
    assert error.startswith("Rocket.Chat refused a post to") and f"{hook}: 400 {REFUSAL}: " in error, error
    assert "it lacks the message-impersonate permission" in error and "posting it again without username" in error
    assert "for 1h or until a reload" in error
    assert "Administration > Workspace > Permissions > message-impersonate" in error
    assert "a role of the user the integration posts as" in error and "unset ROCKETCHAT_USERNAME" in error
    assert rocketchat.token("critical") not in logs.text()
    assert refusals(daemon) == 1
    assert metrics(daemon)['rcwebhook_rocketchat_posts_total{route="critical",outcome="accepted"}'] == 1


def test_after_a_refusal_the_hook_leaves_the_username_out_until_a_reload(start_daemon, rocketchat, logs):
    values = dict(ROCKETCHAT_USERNAME="Alertmanager", **hooks(rocketchat, allow_impersonate=False))
    daemon = start_daemon(**values)
    assert daemon.post_json(notification(alert("One"), group="one"))[0] == 200
    assert daemon.post_json(notification(alert("Two"), group="two"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200]  # no refusal first
    assert len(logs.lines(logging.ERROR)) == 1 and refusals(daemon) == 1
    # the other hooks are not told: each hook is its own integration
    assert daemon.post_json(notification(alert("Other", severity="warning"), group="w"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("warning")] == [400, 200]
    daemon.server.apply(make_settings(PORT="0", **values))  # a reload tries the name again
    assert daemon.post_json(notification(alert("Three"), group="three"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200, 400, 200]
    assert refusals(daemon) == 2 and refusals(daemon, "warning") == 1
    assert titles(rocketchat) == [f"{n}: {n} is bad" for n in ("One", "Two", "Three")]


def test_the_username_is_tried_again_once_the_hook_has_left_it_out_for_a_while(start_daemon, rocketchat):
    daemon = start_daemon(ROCKETCHAT_USERNAME="Alertmanager", ROCKETCHAT_RATE_LIMIT="0",
                          **hooks(rocketchat, allow_impersonate=False))
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(notification(alert("First"), group="first"))[0] == 200
    assert daemon.post_json(notification(alert("Soon"), group="soon"))[0] == 200
    clock.advance(IMPERSONATE_RETRY - 60)
    assert daemon.post_json(notification(alert("Later"), group="later"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200, 200]  # still left out
    clock.advance(61)
    assert daemon.post_json(notification(alert("After"), group="after"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200, 200, 400, 200]  # tried again
    assert refusals(daemon) == 2
    assert len(titles(rocketchat)) == 4


def test_a_hook_allowed_to_impersonate_keeps_its_username(start_daemon, rocketchat, logs):
    daemon = start_daemon(ROCKETCHAT_USERNAME="Alertmanager", **hooks(rocketchat, allow_impersonate=True))
    assert daemon.post_json(notification(alert("DiskFull")))[0] == 200
    [posted] = rocketchat.messages("critical")
    assert posted["username"] == "Alertmanager"
    assert logs.lines(logging.ERROR) == [] and refusals(daemon) == 0
    assert texts(rocketchat)[0].startswith(":rotating_light:")


def test_a_hook_sets_own_username_is_the_one_named(start_daemon, rocketchat, logs):
    daemon = start_daemon(ROCKETCHAT_USERNAME="Alertmanager", RECEIVERS="db", DB_ROCKETCHAT_USERNAME="DB alerts",
                          DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.add_hook("db"),
                          **hooks(rocketchat, allow_impersonate=True))
    status, _, body = daemon.post_json(notification(alert("Locks")), path="/webhook/db")
    assert status == 200, body
    first, again = rocketchat.requests("db")
    assert (first["body"]["username"], first["status"], again["status"]) == ("DB alerts", 400, 200)
    [error] = logs.lines(logging.ERROR)
    assert error.endswith("or unset DB_ROCKETCHAT_USERNAME"), error
    assert refusals(daemon, "db/critical") == 1
