"""Rendering: what an on-call engineer sees, and that Rocket.Chat accepts every message built."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest

from rcwebhook.messages import render
from rcwebhook.messages.notification import parse
from rcwebhook.messages.routing import plan
from tests.conftest import load_example, make_settings
from tests.rocketchat_standin import check_message

URLS = {
    "ROCKETCHAT_WEBHOOK_CRITICAL": "https://rc.example.com/hooks/c/tc",
    "ROCKETCHAT_WEBHOOK_WARNING": "https://rc.example.com/hooks/w/tw",
    "ROCKETCHAT_WEBHOOK_INFO": "https://rc.example.com/hooks/i/ti",
}


def render_all(payload, **settings_values):
    settings = make_settings(**{**URLS, **settings_values})
    notification = parse(json.dumps(payload).encode())
    return {b.route.name: render.render(notification, b, settings) for b in plan(notification, settings).batches}


def accepted(rendered) -> None:
    """Fail unless the real Rocket.Chat (default integration settings) would accept the message."""
    error = check_message(rendered, max_message_size=5000, allow_channel_override=False, allow_impersonate=False)
    assert error is None, (error, rendered)
    json.dumps(rendered)  # plain JSON data, nothing else


def alert(name="A", severity="critical", status="firing", **extra):
    labels = {"alertname": name, "severity": severity, **extra.pop("labels", {})}
    return {"status": status, "labels": labels, "annotations": extra.pop("annotations", {}), **extra}


class TestExample:
    """The checklist's sample: HighCPUUsage critical, HighMemoryUsage warning."""

    def setup_method(self):
        self.messages = render_all(load_example())

    def test_one_message_per_severity(self):
        assert set(self.messages) == {"critical", "warning"}
        assert [a["title"] for a in self.messages["critical"]["attachments"]] == [
            "HighCPUUsage: CPU usage above 90% on server1"]
        assert [a["title"] for a in self.messages["warning"]["attachments"]] == [
            "HighMemoryUsage: Memory usage above 80% on server1"]

    def test_headline_has_emoji_state_name_labels_and_summary(self):
        view = "http://localhost:9093/#/alerts?filter="
        assert self.messages["critical"]["text"] == (
            f":rotating_light: [FIRING:1] [HighCPUUsage]({view}%7Balertname%3D%22HighCPUUsage%22%2Cinstance%3D%22"
            "server1%3A9100%22%2Cjob%3D%22node%22%2Cseverity%3D%22critical%22%7D) instance=server1:9100 job=node"
            " — CPU usage above 90% on server1")
        assert self.messages["warning"]["text"].startswith(":warning: [FIRING:1] [HighMemoryUsage](")
        assert self.messages["warning"]["text"].endswith(
            " instance=server1:9100 job=node — Memory usage above 80% on server1")

    def test_headline_links_to_alertmanagers_view_of_these_alerts(self):
        link = self.messages["critical"]["text"].split("](", 1)[1].split(")", 1)[0]
        base, _, encoded = link.partition("?filter=")
        assert base == "http://localhost:9093/#/alerts"
        assert unquote(encoded) == '{alertname="HighCPUUsage",instance="server1:9100",job="node",severity="critical"}'

    def test_attachment_shows_description_labels_start_and_links(self):
        attachment = self.messages["critical"]["attachments"][0]
        assert attachment["color"] == "#d62728"
        assert attachment["text"].startswith("CPU usage on server1:9100 has been above 90% for 5 minutes")
        assert "[Runbook](https://runbooks.example.com/HighCPUUsage)" in attachment["text"]
        assert "[Prometheus](http://localhost:9090/graph?g0.expr=" in attachment["text"]
        assert attachment["title_link"].startswith("http://localhost:9090/graph?")
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields == {"Started": "2026-01-30 10:00:00 UTC"}  # its labels are in the headline

    def test_silence_link_matches_exactly_this_alert(self):
        text = self.messages["critical"]["attachments"][0]["text"]
        link = text.split("[Silence](")[1].rstrip(")")
        base, _, encoded = link.partition("?filter=")
        assert base == "http://localhost:9093/#/silences/new"
        assert unquote(encoded) == '{alertname="HighCPUUsage",instance="server1:9100",job="node",severity="critical"}'

    def test_every_message_is_accepted(self):
        for rendered in self.messages.values():
            accepted(rendered)

    def test_no_username_icon_or_channel_unless_configured(self):
        assert set(self.messages["critical"]) == {"text", "attachments"}


def test_configured_username_icon_and_channel_are_sent():
    rendered = render_all({"alerts": [alert()]}, ROCKETCHAT_USERNAME="Alertmanager",
                          ROCKETCHAT_ICON_EMOJI=":bell:", ROCKETCHAT_CHANNEL_CRITICAL="#alerts-critical")
    assert rendered["critical"]["username"] == "Alertmanager"
    assert rendered["critical"]["icon_emoji"] == ":bell:"
    assert rendered["critical"]["channel"] == "#alerts-critical"


def test_resolved_alert_is_green_with_duration():
    rendered = render_all({"status": "resolved", "alerts": [alert(
        status="resolved", annotations={"summary": "back"},
        startsAt="2026-01-30T10:00:00Z", endsAt="2026-01-30T11:02:03.5Z")]})["critical"]
    assert rendered["text"] == ":white_check_mark: [RESOLVED:1] A — back (critical)"
    attachment = rendered["attachments"][0]
    assert attachment["title"] == "Resolved: A: back"
    assert attachment["color"] == "#2ca02c"
    assert {"title": "Duration", "value": "1h 2m", "short": True} in attachment["fields"]


def test_mixed_firing_and_resolved_in_one_route():
    rendered = render_all({"alerts": [alert("A"), alert("B", status="resolved")]})["critical"]
    assert rendered["text"] == ":rotating_light: [FIRING:1] [RESOLVED:1] A, B"
    assert [a["color"] for a in rendered["attachments"]] == ["#d62728", "#2ca02c"]


@pytest.mark.parametrize("severity, color", [("critical", "#d62728"), ("warning", "#ff7f0e"), ("info", "#1f77b4")])
def test_colour_follows_severity(severity, color):
    rendered = render_all({"alerts": [alert(severity=severity)]})[severity]
    assert rendered["attachments"][0]["color"] == color


@pytest.mark.parametrize("external", ["", "/alertmanager", "alertmanager:9093", "javascript:alert(1)", "http://"])
def test_no_silence_link_without_an_absolute_external_url(external):
    rendered = render_all({"externalURL": external, "alerts": [alert()]})["critical"]
    assert "Silence" not in rendered["attachments"][0].get("text", "")
    accepted(rendered)


@pytest.mark.parametrize("url", ["", "/graph?g0.expr=up", "prometheus:9090/graph", "ftp://x/y", "http://a b/"])
def test_relative_or_odd_generator_url_gives_no_link(url):
    rendered = render_all({"alerts": [alert(generatorURL=url, annotations={"runbook_url": url})]})["critical"]
    attachment = rendered["attachments"][0]
    assert "title_link" not in attachment
    assert "Prometheus" not in attachment.get("text", "") and "Runbook" not in attachment.get("text", "")
    accepted(rendered)


def test_urls_with_parentheses_and_spaces_stay_one_markdown_link():
    url = "https://wiki.example.com/Run book (CPU)"
    rendered = render_all({"alerts": [alert(annotations={"runbook_url": url.replace(" ", "%20")})]})["critical"]
    assert "[Runbook](https://wiki.example.com/Run%20book%20%28CPU%29)" in rendered["attachments"][0]["text"]


def test_missing_summary_and_description():
    attachment = render_all({"alerts": [alert("OnlyName")]})["critical"]["attachments"][0]
    assert attachment["title"] == "OnlyName"
    assert "text" not in attachment


def test_message_annotation_stands_in_for_description():
    attachment = render_all({"alerts": [alert(annotations={"message": "from message"})]})["critical"]["attachments"][0]
    assert attachment["text"] == "from message"


def test_other_annotations_become_fields_and_empty_ones_are_dropped():
    attachment = render_all({"alerts": [alert(
        labels={"empty": "", "blank": "   "},
        annotations={"value": "97%", "dashboard": "", "summary": "s"})]})["critical"]["attachments"][0]
    titles = [f["title"] for f in attachment["fields"]]
    assert "value" in titles and "empty" not in titles and "blank" not in titles and "dashboard" not in titles


def test_many_alerts_are_capped_with_an_and_more_line():
    payload = {"alerts": [alert(f"Alert{i}") for i in range(250)], "truncatedAlerts": 7}
    rendered = render_all(payload, MAX_ALERTS_PER_MESSAGE="20")["critical"]
    assert len(rendered["attachments"]) == 20
    assert "…and 230 more alerts not shown here; see Alertmanager." in rendered["text"]
    assert "Alertmanager left out 7 more alerts of this group" in rendered["text"]
    assert "[FIRING:250]" in rendered["text"]
    accepted(rendered)


def test_headline_names_are_bounded():
    payload = {"alerts": [alert("N" * 100 + str(i)) for i in range(100)]}
    text = render_all(payload)["critical"]["text"]
    assert len(text) < 600
    assert text.splitlines()[0].endswith(" and 97 more")


def test_long_annotations_are_cut_with_an_ellipsis():
    attachment = render_all({"alerts": [alert(annotations={"summary": "s" * 5000, "description": "d" * 50000},
                                              labels={"big": "v" * 10000})]})["critical"]["attachments"][0]
    assert len(attachment["title"]) == render.TITLE_LIMIT and attachment["title"].endswith("…")
    assert len(attachment["text"]) == render.DESCRIPTION_LIMIT and attachment["text"].endswith("…")
    big = next(f for f in attachment["fields"] if f["title"] == "big")
    assert len(big["value"]) == render.FIELD_VALUE_LIMIT


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h"), (90061, "1d 1h")])
def test_duration(seconds, shown):
    assert render.duration(seconds) == shown


# --- generated payloads: the stand-in Rocket.Chat accepts every message rendered --------------

NASTY_STRINGS = [
    "", " ", "\n", "\t\t", "plain", 'quote " and \' and `tick`', "back\\slash", "multi\nline\ntext",
    "*bold* _it_ ~~s~~ [link](javascript:x) <b>html</b> @all #channel", "Ünïcödé – 日本語 – 🔥🚀",
    "\u202eRTL\u200b zero width", "x" * 6000, "{{ template }}", "%s %d %(x)s", "null", "}{][",
    "http://", "https://ok.example.com/path?q=1", "/relative", "ftp://x", "\x00\x01\x7f",
]


def generated_payload(rng: random.Random) -> dict:
    def text():
        return rng.choice(NASTY_STRINGS) if rng.random() < 0.7 else "".join(
            chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))

    def mapping(n):
        keys = [text()[:50] for _ in range(rng.randint(0, n))]
        return {k: text() for k in keys}

    alerts = []
    for _ in range(rng.choice([0, 1, 2, 5, 30, 300])):
        labels = mapping(8)
        for key in ("alertname", "severity"):
            if rng.random() < 0.8:
                labels[key] = rng.choice([text(), "critical", "warning", "info", "page", "CRITICAL"])
        annotations = mapping(5)
        for key in ("summary", "description", "runbook_url", "message"):
            if rng.random() < 0.5:
                annotations[key] = text()
        item = {"labels": labels, "annotations": annotations}
        for key in ("startsAt", "endsAt"):
            if rng.random() < 0.8:
                item[key] = rng.choice(["2026-01-30T10:00:00.123456789Z", "0001-01-01T00:00:00Z", text(),
                                        "2026-01-30T09:00:00+01:00"])
        if rng.random() < 0.8:
            item["generatorURL"] = text()
        if rng.random() < 0.8:
            item["status"] = rng.choice(["firing", "resolved"])
        alerts.append(item)
    return {"alerts": alerts, "externalURL": text(), "truncatedAlerts": rng.choice([0, 0, 3]),
            "status": rng.choice(["firing", "resolved"]), "groupKey": text()}


def test_generated_payloads_always_render_acceptable_messages():
    rng = random.Random(20261127)
    rendered_count = 0
    for _ in range(300):
        for rendered in render_all(generated_payload(rng)).values():
            accepted(rendered)
            assert rendered["text"].strip()
            assert len(rendered["attachments"]) <= 20
            rendered_count += 1
    assert rendered_count > 300


def group(name, count=1, group_key=None, **extra):
    """A notification of one group: `count` critical alerts named `name`, each with `extra` fields."""
    return {"groupKey": group_key or name, "status": "firing", "externalURL": "http://am.example.com:9093",
            "alerts": [dict(alert(name, labels={"instance": f"host{i}"}), fingerprint=f"{name}-{i}", **extra)
                       for i in range(count)]}


def posted_while_paced(start_daemon, rocketchat, notifications, **hook):
    """Post a first notification (which takes the hook's one post a second), then `notifications` at once, so
    that they wait together and go out merged as far as they may; return the posts after the first."""
    url = rocketchat.add_hook("critical", **hook)
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=url, DEFAULT_SEVERITY="critical", ROCKETCHAT_RATE_LIMIT="1/1",
                          MAX_ALERTS_PER_MESSAGE="100",
                          CHANNEL_LABEL="channel")
    assert daemon.post_json(group("Warm"))[0] == 200
    with ThreadPoolExecutor(len(notifications)) as pool:
        answers = list(pool.map(lambda n: daemon.post_json(n)[0], notifications))
    assert answers == [200] * len(notifications)
    posts = rocketchat.messages("critical")
    assert [a["title"] for a in posts[0]["attachments"]] == ["Warm"]
    return posts[1:]


def test_waiting_messages_merge_within_the_text_limit(start_daemon, rocketchat):
    long_labels = {f"label{i}": "v" * 30 for i in range(10)}
    notifications = [group(f"Long{i}" + "x" * 110) for i in range(10)]
    for notification in notifications:
        for item in notification["alerts"]:
            item["labels"].update(long_labels)
            item["annotations"] = {"summary": "s" * 240}
    posts = posted_while_paced(start_daemon, rocketchat, notifications)
    assert sum(len(post["attachments"]) for post in posts) == 10
    assert len(posts) < 10  # merged: the headlines of 10 groups need more than one post's 5000 units
    assert all(render.units(post["text"]) <= render.TEXT_LIMIT for post in posts), \
        [render.units(post["text"]) for post in posts]


def test_waiting_messages_merge_within_the_attachment_limit(start_daemon, rocketchat):
    posts = posted_while_paced(start_daemon, rocketchat, [group("A", 100), group("B", 100), group("C", 1)])
    # Whatever order they came in, two posts carry them: 200 attachments at most in each.
    assert sorted(len(post["attachments"]) for post in posts) in ([1, 200], [100, 101])


def test_messages_for_other_channels_are_not_merged(start_daemon, rocketchat):
    other = group("Other")
    other["alerts"][0]["labels"]["channel"] = "#other"
    posts = posted_while_paced(start_daemon, rocketchat, [group("A"), other, group("B")],
                               allow_channel_override=True)
    by_channel = {post.get("channel", ""): [a["title"] for a in post["attachments"]] for post in posts}
    assert by_channel["#other"] == ["Other"]
    assert sorted(title for post in posts if "channel" not in post for title in
                  (a["title"] for a in post["attachments"])) == ["A", "B"]


def test_one_message_always_goes_even_when_large(start_daemon, rocketchat):
    # 100 alerts with a long description and many annotations: one message of more than MAX_POST_BYTES.
    annotations = {"description": "d" * 2000, **{f"note{i}": "n" * 300 for i in range(14)}}
    posts = posted_while_paced(start_daemon, rocketchat, [group("Big", 100, annotations=annotations)])
    assert len(posts) == 1 and len(posts[0]["attachments"]) == 100
    assert len(json.dumps(posts[0]).encode()) > render.MAX_POST_BYTES


# --- the look: headline, fields, links, times -----------------------------------------------

def fields_of(attachment) -> dict:
    return {f["title"]: f["value"] for f in attachment.get("fields", [])}


def test_labels_common_to_every_alert_are_in_the_headline_once_not_in_each_attachment():
    payload = {"externalURL": "http://am.example.com:9093", "alerts": [
        alert("HighCPUUsage", labels={"cluster": "prod", "job": "node", "instance": f"node{i}:9100"})
        for i in range(3)]}
    rendered = render_all(payload)["critical"]
    headline = rendered["text"]
    assert headline.startswith(":rotating_light: [FIRING:3] [HighCPUUsage](http://am.example.com:9093/#/alerts?")
    assert headline.endswith(") cluster=prod job=node")
    assert "instance=" not in headline and "severity=" not in headline
    for i, attachment in enumerate(rendered["attachments"]):
        assert fields_of(attachment) == {"instance": f"node{i}:9100"}
    accepted(rendered)


def test_a_severity_label_that_is_an_alias_is_shown():
    rendered = render_all({"alerts": [alert(severity="page")]})["critical"]
    assert rendered["text"] == ":rotating_light: [FIRING:1] A severity=page"


def test_at_signs_in_headline_labels_and_summary_mention_nobody():
    rendered = render_all({"alerts": [alert("@all", labels={"team": "@here"}, annotations={"summary": "ping @all"})]})
    text = rendered["critical"]["text"]
    assert "@all" not in text and "@here" not in text
    assert text == ":rotating_light: [FIRING:1] @\u200ball team=@\u200bhere — ping @\u200ball"


def test_an_alert_with_twenty_labels_keeps_its_start_time_and_annotations():
    # values too long for the headline: every label would be a field
    labels = {f"label{i:02}": f"value {i} " + "x" * 120 for i in range(20)}
    payload = {"alerts": [alert("Wide", labels=labels, annotations={"value": "97%", "owner": "team-db"},
                                startsAt="2026-01-30T10:00:00Z")]}
    rendered = render_all(payload)["critical"]
    attachment = rendered["attachments"][0]
    fields = fields_of(attachment)
    assert len(attachment["fields"]) == render.MAX_FIELDS
    assert fields["Started"] == "2026-01-30 10:00:00 UTC"
    assert fields["value"] == "97%" and fields["owner"] == "team-db"
    assert [f"label{i:02}" for i in range(12)] == [t for t in fields if t.startswith("label")]
    # the labels that did not fit are summed up in one field, not lost without a trace
    assert fields["8 more labels"].startswith("label12=value 12 xxx")
    accepted(rendered)


def test_labels_too_long_for_the_headline_are_fields():
    rendered = render_all({"alerts": [alert(labels={"job": "node", "query": "q" * 150})]})["critical"]
    assert rendered["text"] == ":rotating_light: [FIRING:1] A job=node"
    assert fields_of(rendered["attachments"][0]) == {"query": "q" * 150}


def test_a_resolved_alert_has_no_silence_link():
    payload = {"externalURL": "http://am.example.com:9093", "alerts": [
        alert("Gone", status="resolved", generatorURL="http://prom.example.com/graph", startsAt="2026-01-30T10:00:00Z",
              endsAt="2026-01-30T10:05:00Z"),
        alert("Here", generatorURL="http://prom.example.com/graph")]}
    gone, here = render_all(payload)["critical"]["attachments"]
    assert "[Prometheus](http://prom.example.com/graph)" in gone["text"]
    assert "Silence" not in gone["text"]
    assert "[Silence](http://am.example.com:9093/#/silences/new?filter=" in here["text"]


def test_an_annotation_holding_a_url_is_a_link_named_after_it_not_a_field():
    rendered = render_all({"alerts": [alert(annotations={
        "dashboard": "https://grafana.example.com/d/abc?var-host=x", "runbook_url": "https://wiki.example.com/rb",
        "value": "97%", "notes": "see https://x.example.com", "broken": "http:// spaced"})]})["critical"]
    attachment = rendered["attachments"][0]
    assert attachment["text"] == ("[Runbook](https://wiki.example.com/rb) · "
                                  "[dashboard](https://grafana.example.com/d/abc?var-host=x)")
    assert fields_of(attachment) == {"value": "97%", "notes": "see https://x.example.com", "broken": "http:// spaced"}
    accepted(rendered)


def test_the_and_more_line_links_to_alertmanagers_view_of_the_group():
    payload = {"externalURL": "https://am.example.com/", "alerts": [
        alert(f"Alert{i}", labels={"cluster": "prod"}) for i in range(25)]}
    text = render_all(payload, MAX_ALERTS_PER_MESSAGE="20")["critical"]["text"]
    view = ("https://am.example.com/#/alerts?filter=" + "%7Bcluster%3D%22prod%22%2Cseverity%3D%22critical%22%7D")
    assert f"…and 5 more alerts not shown here; see [Alertmanager]({view})." in text
    assert text.startswith(f":rotating_light: [FIRING:25] [Alert0, Alert1, ")
    assert f"]({view}) cluster=prod\n" in text


@pytest.mark.parametrize("external", ["", "/alertmanager", "alertmanager:9093", "javascript:alert(1)"])
def test_no_alert_view_link_without_an_absolute_external_url(external):
    payload = {"externalURL": external, "alerts": [alert(f"A{i}") for i in range(25)]}
    text = render_all(payload)["critical"]["text"]
    assert "](" not in text
    assert "…and 5 more alerts not shown here; see Alertmanager." in text


def test_alert_names_with_brackets_get_the_link_after_them():
    text = render_all({"externalURL": "http://am:9093", "alerts": [alert("Disk [sda]")]})["critical"]["text"]
    assert text.startswith(":rotating_light: [FIRING:1] Disk [sda] · [Alertmanager](http://am:9093/#/alerts?filter=")


def test_times_are_shown_in_the_configured_timezone():
    payload = {"status": "resolved", "alerts": [alert(status="resolved", startsAt="2026-01-30T10:00:00Z",
                                                      endsAt="2026-07-30T10:00:00Z")]}
    fields = fields_of(render_all(payload, TIMEZONE="Europe/Berlin")["critical"]["attachments"][0])
    assert fields["Started"] == "2026-01-30 11:00:00 CET"
    summer = {"alerts": [alert(startsAt="2026-07-30T10:00:00Z")]}
    assert fields_of(render_all(summer, TIMEZONE="Europe/Berlin")["critical"]["attachments"][0])["Started"] \
        == "2026-07-30 12:00:00 CEST"
    assert fields_of(render_all(summer)["critical"]["attachments"][0])["Started"] == "2026-07-30 10:00:00 UTC"


def test_a_shortened_headline_drops_the_link_then_the_labels_then_the_summary_and_loses_nothing():
    payload = {"externalURL": "http://am.example.com:9093", "alerts": [
        alert("DiskFull", labels={"instance": "db1:9100", "job": "node"}, annotations={"summary": "Disk full on db1"})]}
    settings = make_settings(**URLS)
    notification = parse(json.dumps(payload).encode())
    [batch] = plan(notification, settings).batches

    def shortened(level):
        return render.group_message(batch.route, batch.alerts, notification.external_url, 0, settings,
                                     shorten=level)

    texts = [shortened(level)["text"] for level in range(render.SHORTEST + 1)]
    assert texts[0].startswith(":rotating_light: [FIRING:1] [DiskFull](http://am.example.com:9093/#/alerts?")
    assert texts[0].endswith(" instance=db1:9100 job=node — Disk full on db1")
    assert texts[1:] == [":rotating_light: [FIRING:1] DiskFull instance=db1:9100 job=node — Disk full on db1",
                         ":rotating_light: [FIRING:1] DiskFull — Disk full on db1",
                         ":rotating_light: [FIRING:1] DiskFull"]
    for level in range(render.SHORTEST + 1):
        [attachment] = shortened(level)["attachments"]
        assert attachment["title"] == "DiskFull: Disk full on db1"
        fields = fields_of(attachment)
        if level >= 2:  # the labels the headline no longer shows
            assert (fields["instance"], fields["job"]) == ("db1:9100", "node")
        else:
            assert "instance" not in fields
        accepted(shortened(level))
