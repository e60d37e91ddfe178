"""examples/grafana-dashboard.json: it imports cleanly, and every panel's query answers with series when a
real Prometheus scrapes rcwebhook under traffic."""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from tests.conftest import ROOT, load_example, require_program
from tests.test_prometheus import daemon, hooks, start_prometheus  # noqa: F401 - fixtures used here

DASHBOARD = ROOT / "examples" / "grafana-dashboard.json"
# Grafana's variables, as Grafana would fill them in for this one Prometheus and this one rcwebhook.
RATE_INTERVAL = "5s"  # scrapes every second: five samples per window
QUERY_TIMEOUT = 30.0


def dashboard() -> Dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(board: Dict[str, Any]) -> List[Dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return [p for p in found if p["type"] != "row"]


def queries(board: Dict[str, Any]) -> List[Tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels(board) for target in panel["targets"]]


def test_the_dashboard_imports_cleanly():
    board = dashboard()  # valid JSON, or this fails
    assert board["title"] and board["uid"] == "rcwebhook" and board["schemaVersion"] >= 30
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query" and "label_values(" in variables["instance"]["definition"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
    text = DASHBOARD.read_text()
    # Nothing of one installation: no address, no fixed instance or datasource.
    assert not re.search(r"127\.0\.0\.1|localhost|:8093|instance=\"", text)
    assert '"uid": "${datasource}"' in text and "__inputs" not in text
    # What the dashboard must show, by the metric it reads.
    wanted = {"webhook_requests_total", "webhook_errors_total", "rcwebhook_rocketchat_posts_total",
              "rcwebhook_pending_posts", "rcwebhook_rocketchat_rate_limit_waits_total",
              "rcwebhook_rocketchat_post_duration_seconds_bucket", "rcwebhook_config_last_reload_successful",
              "process_resident_memory_bytes", "rcwebhook_thread_replies_total", "rcwebhook_state_errors_total"}
    exprs = " ".join(expr for _, expr in queries(board))
    assert {name for name in wanted if name in exprs} == wanted


@pytest.fixture
def traffic(daemon, rocketchat) -> Iterator[None]:  # noqa: F811 - the fixture imported above
    """Notifications posted continually while the test runs: some retried after a 503, some refused."""
    stop = threading.Event()

    def send() -> None:
        minute = 0
        while not stop.is_set():
            minute += 1
            payload = load_example()
            for alert in payload["alerts"]:
                alert["startsAt"] = f"2030-01-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z"
            if minute % 7 == 0:
                rocketchat.fail_next("critical", 1, status=503, error="Service Unavailable")
            daemon.post_json(payload)
            stop.wait(0.05)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)


def test_every_panel_query_answers_with_series_from_a_real_prometheus(daemon, traffic,  # noqa: F811
                                                                         start_prometheus):
    require_program("prometheus")
    prometheus = start_prometheus(daemon.port)
    instance = f"127.0.0.1:{daemon.port}"
    prometheus.wait_until(lambda: prometheus.query(f'up{{instance="{instance}"}}'), "rcwebhook was not scraped",
                          lambda v: v == [1.0])
    board = dashboard()
    variables = {"$__rate_interval": RATE_INTERVAL, "$instance": instance.replace(".", "\\\\."), "$job": "rcwebhook"}
    # The variable's own query finds this rcwebhook.
    found = prometheus.api("/api/v1/series", **{"match[]": "rcwebhook_build_info"})
    assert [s["instance"] for s in found] == [instance]

    def run(expr: str) -> List[Dict[str, Any]]:
        for name, value in variables.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, expr
        data = prometheus.api("/api/v1/query", query=expr)  # fails on an error answer
        return data["result"]

    empty = {}
    for title, expr in queries(board):
        try:
            prometheus.wait_until(lambda: run(expr), f"{title}: {expr} returned no series", timeout=QUERY_TIMEOUT)
        except AssertionError as exc:
            empty[title] = str(exc).splitlines()[0]
    assert not empty, json.dumps(empty, indent=1)
    # Under this traffic the percentiles are numbers, not NaN: Rocket.Chat's latency was measured.
    latency = [e for t, e in queries(board) if t == "Rocket.Chat latency"]
    values = [float(s["value"][1]) for s in run(latency[0])]
    assert any(v == v and v > 0 for v in values), values
