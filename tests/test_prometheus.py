"""rcwebhook as Prometheus sees it: promtool on /metrics and on the example rules, amtool on the
example Alertmanager configuration, a real Prometheus scraping the daemon and evaluating the rules, and
the example Grafana dashboard's every query run through that Prometheus under traffic.

The rules file is read with a small line parser (the tests stay stdlib-only); every test that uses
it first checks that it found as many rules as promtool does.  Every wait is on a condition with a
deadline.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from rcwebhook.config.keys import DEFAULTS
from tests.conftest import ROOT, load_example, require_program
from tests.programs import ProgramOnPort

RULES = ROOT / "examples" / "alerting-rules.yml"
ALERTMANAGER_EXAMPLE = ROOT / "examples" / "alertmanager.yml"
ROUTES = ("critical", "warning", "info")
INSTANCE = "127.0.0.1:8093"
# Labels that never show in the exposition: Prometheus attaches job and instance at scrape time.
TARGET_LABELS = {"job", "instance"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan"}

READY_TIMEOUT = 15.0
SCRAPE_TIMEOUT = 15.0  # scrape and evaluation intervals are 1 s; room for a slow CI machine
START_ATTEMPTS = 3
NOTIFICATIONS = 3


# --- reading what the daemon and the rules file say -------------------------------------------

SAMPLE_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    """One line of the text exposition format."""

    name: str
    labels: Dict[str, str]
    value: float


def parse_exposition(text: str) -> List[Sample]:
    """Return every sample of a /metrics body; fail on a line that is neither a comment nor a sample."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line in /metrics: {line!r}"
        name, labels, value = match.groups()
        samples.append(Sample(name, dict(LABEL_PAIR.findall(labels or "")), float(value)))
    return samples


def value_of(samples: List[Sample], name: str, **labels: str) -> Optional[float]:
    """Return the value of the sample with exactly these labels, or None if there is none."""
    for sample in samples:
        if sample.name == name and sample.labels == labels:
            return sample.value
    return None


def get_metrics(daemon) -> Tuple[str, bytes]:
    """Return the Content-Type and body of the daemon's GET /metrics (its body is not JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, f"GET /metrics answered {response.status}: {body[:500]!r}"
        return response.getheader("Content-Type", ""), body
    finally:
        conn.close()


@dataclass
class Rule:
    """One alerting rule of the rules file, as written."""

    alert: str
    expr: str = ""
    annotations: Dict[str, str] = field(default_factory=dict)


def read_rules(path: Path = RULES) -> List[Rule]:
    """Return the alerting rules of a rules file written like the example: inline or block `expr`,
    double-quoted annotations."""
    rules: List[Rule] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        alert = re.fullmatch(r"-\s*alert:\s*(\S+)", stripped)
        if alert:
            rules.append(Rule(alert.group(1)))
        elif rules and not stripped.startswith("#"):
            key, _, value = stripped.partition(":")
            value = value.strip()
            if key == "expr":
                if value in ("|", "|-", ">", ">-"):
                    indent = len(line) - len(line.lstrip())
                    block = []
                    while i + 1 < len(lines) and (
                            not lines[i + 1].strip() or len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent):
                        i += 1
                        block.append(lines[i].strip())
                    value = " ".join(block)
                rules[-1].expr = value
            elif key in ("summary", "description") and value.startswith('"'):
                rules[-1].annotations[key] = json.loads(value)  # YAML double quotes, JSON-compatible here
        i += 1
    return rules


def selectors(expr: str) -> List[Tuple[str, Dict[str, str]]]:
    """Return each metric selector of a PromQL expression with its equality matchers."""
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations, [5m]
    found = []
    for name, matchers in re.findall(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        equal = dict(re.findall(r'([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"', matchers))
        found.append((name, equal))
    return found


def metric_names(expr: str) -> Set[str]:
    """Return every metric name a PromQL expression reads, with or without a {…} selector."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    # Identifiers not followed by "(" (functions) and not starting inside a number (1e3, 0.05).
    names = re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\(|[\w:])", expr)
    return set(names) - PROMQL_KEYWORDS


def grouping_labels(expr: str) -> Set[str]:
    """Return the labels named in the `by (…)` clauses of a PromQL expression."""
    labels: Set[str] = set()
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        labels.update(label.strip() for label in group.split(",") if label.strip())
    return labels


def promtool_rule_count(promtool: str) -> int:
    """Return how many rules `promtool check rules` finds in the example rules file."""
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool check rules exited {result.returncode}:\n{output}"
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    assert found, f"promtool check rules did not report a rule count:\n{output}"
    return int(found.group(1))


def rendered(template: str, labels: Dict[str, str]) -> str:
    """Return an annotation template with its {{ $labels.x }} filled in, as Prometheus renders it."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)
    assert "{{" not in text, f"this helper only renders {{{{ $labels.x }}}}; extend it for: {template!r}"
    return text


# --- the daemon -------------------------------------------------------------------------------

@pytest.fixture
def hooks(rocketchat) -> Dict[str, str]:
    """Three hooks on the stand-in, as settings."""
    return {f"ROCKETCHAT_WEBHOOK_{name.upper()}": rocketchat.add_hook(name) for name in ROUTES}


@pytest.fixture
def daemon(start_daemon, hooks):
    # Every post reaches the stand-in: no duplicate suppression of the repeated sample, no pacing.
    return start_daemon(DEDUP_WINDOW="0", ROCKETCHAT_RATE_LIMIT="0", **hooks)


# --- 1. /metrics passes promtool's linter ------------------------------------------------------

def test_metrics_pass_promtool_check_metrics(daemon, rocketchat):
    promtool = require_program("promtool")
    example = json.dumps(load_example()).encode()

    assert daemon.post_json(load_example())[0] == 200
    assert daemon.request("POST", "/webhook", b'{"alerts": [', {"Content-Type": "application/json"})[0] == 400
    assert daemon.request("POST", "/webhook", example, {"Content-Type": "text/plain"})[0] == 415
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    assert daemon.post_json(load_example())[0] == 502

    content_type, body = get_metrics(daemon)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_exposition(body.decode("utf-8"))
    # The exposition checked below holds the traffic above, not only the zero-initialised series.
    for code in ("200", "400", "415", "502"):
        assert value_of(samples, "webhook_requests_total", code=code) == 1, code
    assert value_of(samples, "rcwebhook_rocketchat_posts_total", route="critical", outcome="refused") == 1
    assert value_of(samples, "webhook_errors_total", reason="rocketchat_refused") == 1

    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    complaints = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert (result.returncode, complaints) == (0, ""), f"promtool check metrics:\n{complaints}"


# --- 2. the example rules: valid, on real metric names, and they fire -------------------------

def test_alerting_rules_pass_promtool_check_rules(daemon, tmp_path):
    promtool = require_program("promtool")
    rules = read_rules()
    # The parser and promtool must agree, so the checks below see every rule.
    assert promtool_rule_count(promtool) == len(rules) > 0, [rule.alert for rule in rules]
    assert all(rule.expr for rule in rules), [rule.alert for rule in rules if not rule.expr]

    assert daemon.post_json(load_example())[0] == 200
    # A severity rcwebhook does not know, so that the series counting them exists too.
    odd = load_example()
    odd["alerts"] = odd["alerts"][:1]
    odd["alerts"][0]["labels"] = dict(odd["alerts"][0]["labels"], severity="critcal")
    assert daemon.post_json(odd)[0] == 200
    samples = parse_exposition(get_metrics(daemon)[1].decode("utf-8"))
    exposed = {sample.name for sample in samples}
    problems = []
    for rule in rules:
        names = metric_names(rule.expr)
        if not names:
            problems.append(f"{rule.alert}: no metric name found in {rule.expr!r}")
        # `up` is Prometheus' own series about the scrape, never in an exporter's output.
        for name in sorted(names - {"up"} - exposed):
            problems.append(f"{rule.alert}: {name} is not in rcwebhook's /metrics")
        # A matcher on a label value the daemon never exposes makes a rule that can never fire.
        for name, matchers in selectors(rule.expr):
            for label, wanted in matchers.items():
                if name == "up" or label in TARGET_LABELS:
                    continue
                values = {s.labels.get(label) for s in samples if s.name == name}
                if wanted not in values:
                    problems.append(f"{rule.alert}: {name}{{{label}={wanted!r}}} matches nothing; "
                                    f"rcwebhook exposes {label} values {sorted(v for v in values if v)}")
        rule_labels = {label for s in samples if s.name in names for label in s.labels}
        for label in sorted(grouping_labels(rule.expr) - TARGET_LABELS - {"le"} - rule_labels):
            problems.append(f"{rule.alert}: groups by {label!r}, which none of {sorted(names)} has")
    assert not problems, "\n".join(problems)

    by_name = {rule.alert: rule for rule in rules}

    def expected(alert: str, labels: Dict[str, str]) -> Dict[str, Any]:
        return {"exp_labels": labels,
                "exp_annotations": {k: rendered(v, labels) for k, v in by_name[alert].annotations.items()}}

    def series(name: str, **labels: str) -> str:
        pairs = {"job": "rcwebhook", "instance": INSTANCE, **labels}
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"

    posts = "rcwebhook_rocketchat_posts_total"
    refusals = "rcwebhook_rocketchat_refusals_total"
    mentions = "rcwebhook_mention_refusals_total"
    waits = "rcwebhook_rocketchat_rate_limit_waits_total"
    down = {"severity": "critical", "job": "rcwebhook", "instance": INSTANCE}
    refusing = {"severity": "critical", "instance": INSTANCE, "route": "critical"}
    limited = {"severity": "warning", "instance": INSTANCE, "route": "warning"}
    # JSON is YAML, so the unit-test file needs no YAML writer.
    unit_tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": series("up"), "values": "1 1 0x10"},  # scrapes fail from minute 2 on
                {"series": series(refusals, route="critical", reason="invalid_message"), "values": "0 0 1x10"},
                {"series": series(posts, route="critical", outcome="accepted"), "values": "0+1x12"},
                {"series": series(refusals, route="warning", reason="invalid_message"), "values": "0x12"},
                # Refusals whose alerts are posted again anyway: shortened, or without @here/@all.
                {"series": series(refusals, route="info", reason="message_too_long"), "values": "0 0 1x10"},
                {"series": series(mentions, route="info"), "values": "0 0 1x10"},
                {"series": series(waits, route="warning", reason="rocketchat_429"), "values": "0 0 0 2x10"},
                {"series": series(waits, route="critical", reason="pacing"), "values": "0+1x12"},
                {"series": series("webhook_errors_total", reason="unknown_receiver"), "values": "0 0 0 1x10"},
                {"series": series("webhook_errors_total", reason="bad_request"), "values": "0+1x12"},
            ],
            "alert_rule_test": [
                # Down since minute 2: pending at minute 5 (3 of its 5 minutes), firing at minute 8.
                {"eval_time": "5m", "alertname": "RcwebhookDown", "exp_alerts": []},
                {"eval_time": "8m", "alertname": "RcwebhookDown", "exp_alerts": [expected("RcwebhookDown", down)]},
                # Accepted posts alone never fire it; one refusal fires it for its route only.
                {"eval_time": "1m", "alertname": "RcwebhookRocketChatRefusing", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "RcwebhookRocketChatRefusing",
                 "exp_alerts": [expected("RcwebhookRocketChatRefusing", refusing)]},
                {"eval_time": "4m", "alertname": "RcwebhookMentionRefused",
                 "exp_alerts": [expected("RcwebhookMentionRefused", {**limited, "route": "info"})]},
                # Pacing waits are rcwebhook's own and never fire it; Rocket.Chat's 429 does.
                {"eval_time": "2m", "alertname": "RcwebhookRateLimited", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "RcwebhookRateLimited",
                 "exp_alerts": [expected("RcwebhookRateLimited", limited)]},
                # Other errors never fire it; one 404 for an unknown hook set does.
                {"eval_time": "2m", "alertname": "RcwebhookUnknownReceiver", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "RcwebhookUnknownReceiver",
                 "exp_alerts": [expected("RcwebhookUnknownReceiver", {"severity": "critical",
                                                                      "instance": INSTANCE})]},
            ],
        }],
    }
    unit_file = tmp_path / "rcwebhook-rules-test.yml"
    unit_file.write_text(json.dumps(unit_tests, indent=1))
    result = subprocess.run([promtool, "test", "rules", str(unit_file)], capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "SUCCESS" in output, f"promtool test rules exited {result.returncode}:\n{output}"


# --- 3. the example Alertmanager configuration -------------------------------------------------

def test_alertmanager_example_config_is_valid():
    amtool = require_program("amtool")
    # The example itself is checked, unchanged, as an operator copies it. (amtool does not open an
    # http_config credentials_file, so this alone cannot prove the example works: a real Alertmanager
    # delivers with it in tests/test_alertmanager_e2e.py.)
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER_EXAMPLE)], capture_output=True, text=True,
                            timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "SUCCESS" in output, f"amtool check-config exited {result.returncode}:\n{output}"
    assert "1 receivers" in output, output
    # It must call rcwebhook where rcwebhook listens by default.
    urls = re.findall(r"^\s*-?\s*url:\s*(\S+)", ALERTMANAGER_EXAMPLE.read_text(), re.MULTILINE)
    default = f"http://{DEFAULTS['HOST']}:{DEFAULTS['PORT']}/webhook"
    assert urls == [default], urls


# --- 4. a real Prometheus scrapes the daemon and evaluates the rules ---------------------------

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: rcwebhook
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


class Prometheus(ProgramOnPort):
    """A running Prometheus subprocess scraping one rcwebhook, with the example rules loaded."""

    ready_timeout = READY_TIMEOUT
    start_attempts = START_ATTEMPTS
    stop_timeout = 10.0

    def __init__(self, binary: str, workdir: Path, target_port: int) -> None:
        super().__init__("Prometheus", workdir, "/-/ready")
        self.binary = binary
        self.config = workdir / "prometheus.yml"
        self.config.write_text(PROMETHEUS_CONFIG.format(rules=json.dumps(str(RULES)), port=target_port))

    def arguments(self, attempt: int) -> List[str]:
        return [self.binary, f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / f'data-{attempt}'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def api(self, path: str, **params: str) -> Any:
        """Return the `data` of a successful Prometheus HTTP API answer."""
        url = f"{self.url}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"GET {url}: {exc.code} {exc.read()[:500]!r}{self.explain()}") from None
        assert answer.get("status") == "success", f"GET {url}: {answer}{self.explain()}"
        return answer["data"]

    def query(self, promql: str) -> List[float]:
        """Return the values of an instant query's result vector."""
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return [float(item["value"][1]) for item in data["result"]]

    def wait_until(self, fetch: Callable[[], Any], what: str, done: Callable[[Any], bool] = bool,
                   timeout: float = SCRAPE_TIMEOUT) -> Any:
        """Return fetch()'s first result that is `done`, polling until `timeout`; fail with `what` and the last one."""
        deadline = time.monotonic() + timeout
        while True:
            last = fetch()
            if done(last):
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} within {timeout:g}s; last seen: {last!r}{self.explain()}")
            assert self.process is not None and self.process.poll() is None, f"Prometheus exited.{self.explain()}"
            self.pause(0.1)


@pytest.fixture
def start_prometheus(tmp_path) -> Iterator[Callable[[int], Prometheus]]:
    """Start a real Prometheus scraping 127.0.0.1:<port>; always stopped afterwards."""
    started: List[Prometheus] = []

    def start(target_port: int) -> Prometheus:
        prometheus = Prometheus(require_program("prometheus"), tmp_path, target_port)
        started.append(prometheus)
        prometheus.start()
        return prometheus

    yield start
    for prometheus in started:
        prometheus.stop()


def test_prometheus_scrapes_rcwebhook(daemon, rocketchat, start_prometheus):
    require_program("prometheus")
    prometheus = start_prometheus(daemon.port)

    for _ in range(NOTIFICATIONS):
        assert daemon.post_json(load_example())[0] == 200
    assert len(rocketchat.messages("critical")) == NOTIFICATIONS

    up = 'up{job="rcwebhook"}'
    prometheus.wait_until(lambda: prometheus.query(up), f"{up} did not become 1", lambda v: v == [1.0])
    requests = 'webhook_requests_total{job="rcwebhook",code="200"}'
    prometheus.wait_until(lambda: prometheus.query(requests), f"{requests} did not become {NOTIFICATIONS}",
                          lambda v: v == [float(NOTIFICATIONS)])
    counted_at = time.time()

    expected_rules = sorted(rule.alert for rule in read_rules())

    def evaluated_group() -> Optional[Dict[str, Any]]:
        """Return the rcwebhook group once each of its rules was evaluated on the counted samples."""
        groups = [g for g in prometheus.api("/api/v1/rules")["groups"] if g["name"] == "rcwebhook"]
        if len(groups) != 1:
            return None
        rules = groups[0]["rules"]
        evaluated = [r for r in rules if r.get("lastEvaluation") and _timestamp(r["lastEvaluation"]) > counted_at]
        return groups[0] if rules and len(evaluated) == len(rules) else None

    group = prometheus.wait_until(evaluated_group, "the rcwebhook rule group was not evaluated on live data")
    rules = group["rules"]
    assert sorted(r["name"] for r in rules) == expected_rules
    unhealthy = {r["name"]: (r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"}
    assert not unhealthy, f"rules not healthy: {unhealthy}{prometheus.explain()}"
    # Healthy traffic and a reachable daemon: no rule may be pending or firing.
    active = {r["name"]: r["state"] for r in rules if r["state"] != "inactive"}
    assert not active, f"rules active on healthy data: {active}"


def _timestamp(rfc3339: str) -> float:
    """Return seconds since the epoch of a Prometheus API time ("2024-01-02T03:04:05.123456789Z")."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    assert match, rfc3339
    base, fraction, zone = match.groups()
    when = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return when.timestamp() + float("0." + (fraction or "0"))


# --- 5. the example Grafana dashboard: imports cleanly, every panel's query answers -------------

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


# Metrics the dashboard may read before this tree exposes them: added in parallel, see metrics.py.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "time", "or", "on", "vector", "le"}


def exposed_metric_names() -> Set[str]:
    """Return every metric name rcwebhook's sources declare (histograms with their _bucket, _sum, _count)."""
    names = set()
    for module in (ROOT / "rcwebhook").rglob("*.py"):
        names.update(re.findall(r'"((?:rcwebhook|webhook|process)_[a-z_]+)"', module.read_text()))
    return names | {f"{n}_{s}" for n in names for s in ("bucket", "sum", "count")} | {"up"}


def test_the_dashboard_imports_cleanly():
    board = dashboard()  # valid JSON, or this fails
    assert board["title"] and board["uid"] == "rcwebhook" and board["schemaVersion"] >= 30
    # Grafana's import dialog asks for the data source named in __inputs, and puts its uid in place of
    # ${DS_PROMETHEUS} everywhere.
    assert board["__inputs"] == [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                                  "pluginId": "prometheus", "pluginName": "Prometheus",
                                  "description": board["__inputs"][0]["description"]}]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "datasource" not in variables
    assert variables["instance"]["type"] == "query" and "label_values(" in variables["instance"]["definition"]
    for variable in variables.values():
        assert variable["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, variable["name"]
    ids = [p["id"] for p in board["panels"] + [p for row in board["panels"] for p in row.get("panels", [])]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
    text = DASHBOARD.read_text()
    # Nothing of one installation: no address, no fixed instance or datasource.
    assert not re.search(r"127\.0\.0\.1|localhost|:8093|instance=\"", text)
    assert "${datasource}" not in text
    # What the dashboard must show, by the metric it reads.
    wanted = {"webhook_requests_total", "webhook_errors_total", "rcwebhook_rocketchat_posts_total",
              "rcwebhook_pending_posts", "rcwebhook_rocketchat_rate_limit_waits_total",
              "rcwebhook_rocketchat_post_duration_seconds_bucket", "rcwebhook_config_last_reload_successful",
              "process_resident_memory_bytes", "rcwebhook_thread_replies_total", "rcwebhook_state_errors_total",
              "rcwebhook_template_errors_total", "rcwebhook_unknown_receiver_label_total",
              "rcwebhook_mention_refusals_total", "rcwebhook_log_entries_dropped_total"}
    exprs = " ".join(expr for _, expr in queries(board))
    assert {name for name in wanted if name in exprs} == wanted
    assert 'reason="unknown_receiver"' in exprs


def test_every_metric_the_dashboard_reads_exists():
    exposed = exposed_metric_names()
    for title, expr in queries(dashboard()):
        expr = re.sub(r'\{[^}]*\}|\[[^]]*\]|"[^"]*"', "", expr)
        for name in set(re.findall(r"[a-z_][a-z0-9_]*", expr)) - PROMQL_WORDS:
            if name not in {"route", "outcome", "reason", "part", "value", "status", "severity", "code"}:
                assert name in exposed, f"panel {title!r} reads {name}, which rcwebhook does not expose"


@pytest.fixture
def traffic(daemon, rocketchat) -> Iterator[None]:
    """Notifications posted continually while the test runs: some retried after a 503, some refused, some
    labelled for a hook set that does not exist."""
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
            if minute % 5 == 0:  # a label naming no hook set: posted by its path, and counted
                payload["alerts"][0]["labels"]["rocketchat_receiver"] = "nosuchset"
            daemon.post_json(payload)
            stop.wait(0.05)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)


def test_every_panel_query_answers_with_series_from_a_real_prometheus(daemon, traffic,
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
