"""rcwebhook's benchmark suite: `make bench` runs it and writes bench/RESULTS.md.

Everything runs on loopback: rcwebhook as its own process, a fast stand-in Rocket.Chat
(bench/fast_rocketchat.py) as another, the load from wrk (with bench/vary.lua, which gives
every request a new groupKey and new fingerprints so de-duplication does not skip the work)
or, without wrk, from a Python load generator. Each figure is the median of RUNS runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.rocketchat_standin import RocketChatStandin  # noqa: E402

EXAMPLE = ROOT / "examples" / "test-alert.json"
CONNECTIONS = (1, 16, 64)
TEMPLATES = ROOT / "examples" / "templates"
# The example templates of the built-in look, rendering every part they can: the headline, and each
# attachment's title and text (with the alert-view and silence URLs they build).
TEMPLATE_SETTINGS = {"TEMPLATE_FILES": str(TEMPLATES / "builtin.tmpl"), "TEMPLATE_TEXT": "rc.text",
                     "TEMPLATE_ATTACHMENT_TITLE": "rc.title", "TEMPLATE_ATTACHMENT_TEXT": "rc.attachment"}
TEMPLATE_PAIRS = 7  # interleaved built-in and templated runs; the machine may be shared


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, path: str = "/health", timeout: float = 10.0) -> float:
    """Return the seconds until GET `path` answers (any status), polling every 2 ms."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"nothing answered on port {port} within {timeout}s")


class Process:
    """A child process, stopped on exit."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None, log: Optional[Path] = None) -> None:
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                     stderr=self.log)

    def status(self) -> Dict[str, int]:
        """Return VmRSS, VmHWM (KiB) and Threads from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = int(value.split()[0])
        return fields

    def cpu_seconds(self) -> float:
        """Return the CPU time (user and system) the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


def start_rcwebhook(tmp: Path, rocketchat_port: int, **settings: str) -> Tuple[Process, int]:
    port = free_port()
    env = {
        "PORT": str(port),
        "ROCKETCHAT_WEBHOOK_CRITICAL": f"http://127.0.0.1:{rocketchat_port}/hooks/critical/token-critical",
        "ROCKETCHAT_WEBHOOK_WARNING": f"http://127.0.0.1:{rocketchat_port}/hooks/warning/token-warning",
        "ROCKETCHAT_WEBHOOK_INFO": f"http://127.0.0.1:{rocketchat_port}/hooks/info/token-info",
        "ROCKETCHAT_RATE_LIMIT": "0",
        **settings,
    }
    process = Process([sys.executable, str(ROOT / "rcwebhook.py"), "--config", "/dev/null"], env,
                      tmp / f"rcwebhook-{port}.log")
    wait_ready(port)
    return process, port


def start_fast_rocketchat(delay: float = 0.0) -> Tuple[Process, int]:
    port = free_port()
    process = Process([sys.executable, str(BENCH / "fast_rocketchat.py"), str(port), str(delay)])
    wait_ready(port, "/")
    return process, port


# --- load ---------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def load(port: int, connections: int, seconds: float) -> Dict[str, float]:
    """Return requests/s, p50 and p99 (seconds) and non-2xx count of POST /webhook at `connections`."""
    if shutil.which("wrk"):
        result = subprocess.run(
            ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "30s",
             "-s", str(BENCH / "vary.lua"), f"http://127.0.0.1:{port}/webhook"],
            capture_output=True, text=True, env={**os.environ, "RCWEBHOOK_BENCH_BODY": str(EXAMPLE)}, check=True)
        out = result.stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _seconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99": _seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "errors": float(errors.group(1)) if errors else 0.0,
        }
    return python_load(port, connections, seconds)


def python_load(port: int, connections: int, seconds: float) -> Dict[str, float]:
    """The load without wrk: threads on kept-alive connections (slower: it shares the interpreter's cost)."""
    template = json.loads(EXAMPLE.read_text())
    latencies: List[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = 0
        while time.monotonic() < deadline:
            i += 1
            payload = dict(template, groupKey=f"bench-{number}-{i}")
            payload["alerts"] = [dict(a, fingerprint=f"{a['fingerprint']}-{number}-{i}") for a in template["alerts"]]
            started = time.monotonic()
            conn.request("POST", "/webhook", json.dumps(payload), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append(time.monotonic() - started)
                errors[0] += response.status >= 300

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(len(latencies) * 0.99)], "errors": float(errors[0])}


def median_of(runs: List[Dict[str, float]]) -> Dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


# --- the measurements ---------------------------------------------------------------------------

def throughput(tmp: Path, runs: int, seconds: float, results: Dict) -> None:
    fast, fast_port = start_fast_rocketchat()
    try:
        modes = (("delivery", {}, CONNECTIONS),
                 ("delivery-state", {"STATE_DIR": str(tmp / "state")}, (16,)),
                 ("dry-run", {"DRY_RUN": "true"}, CONNECTIONS),
                 ("dry-run-quiet", {"DRY_RUN": "true", "LOG_LEVEL": "WARNING"}, (16,)))
        for mode, settings, connection_counts in modes:
            daemon, port = start_rcwebhook(tmp, fast_port, **settings)
            try:
                results[f"idle_{mode}"] = daemon.status()
                for connections in connection_counts:
                    samples: List[Dict[str, int]] = []
                    stop = threading.Event()

                    def sample() -> None:
                        while not stop.wait(0.2):
                            samples.append(daemon.status())

                    sampler = threading.Thread(target=sample)
                    sampler.start()
                    try:
                        figures = median_of([load(port, connections, seconds) for _ in range(runs)])
                    finally:
                        stop.set()
                        sampler.join()
                    figures["rss_kib"] = max(s["VmRSS"] for s in samples)
                    figures["threads"] = max(s["Threads"] for s in samples)
                    results[f"{mode}_{connections}"] = figures
                    print(f"{mode} c={connections}: {figures}", flush=True)
                results[f"peak_{mode}"] = daemon.status()
            finally:
                daemon.stop()
        results["fast_rocketchat"] = json.loads(http_get(fast_port, "/"))
    finally:
        fast.stop()
    bare_port = free_port()
    bare = Process([sys.executable, str(BENCH / "bare_server.py"), str(bare_port)])
    try:
        wait_ready(bare_port, "/")
        for connections in CONNECTIONS:
            results[f"bare_{connections}"] = median_of([load(bare_port, connections, seconds) for _ in range(runs)])
            print(f"bare c={connections}: {results[f'bare_{connections}']}", flush=True)
    finally:
        bare.stop()


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def status_polling(tmp: Path, runs: int, seconds: float, results: Dict) -> None:
    """/webhook throughput at 16 connections while /status is fetched in a loop, against the same without,
    and, for reference, while /health is fetched so (any request takes some of the interpreter's time)."""
    fast, fast_port = start_fast_rocketchat()
    daemon, port = start_rcwebhook(tmp, fast_port)
    figures: Dict[str, List[Dict[str, float]]] = {"without": [], "health": [], "status": [],
                                                  "health_fetches": [], "status_fetches": []}
    try:
        for _ in range(runs):  # alternated, so that drift of the machine weighs on all alike
            figures["without"].append(load(port, 16, seconds))
            for name, path in (("status", "/status"), ("health", "/health")):
                stop = threading.Event()
                latencies: List[float] = []

                def poll() -> None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    while not stop.is_set():
                        started = time.monotonic()
                        conn.request("GET", path, headers={"Accept": "text/html"})
                        response = conn.getresponse()
                        response.read()
                        assert response.status == 200, response.status
                        latencies.append(time.monotonic() - started)
                    conn.close()

                poller = threading.Thread(target=poll)
                poller.start()
                try:
                    figures[name].append(load(port, 16, seconds))
                finally:
                    stop.set()
                    poller.join()
                latencies.sort()
                figures[f"{name}_fetches"].append({"per_second": len(latencies) / seconds,
                                                   "p50": latencies[len(latencies) // 2],
                                                   "p99": latencies[int(len(latencies) * 0.99)]})
    finally:
        daemon.stop()
        fast.stop()
    results["status_polling"] = {name: median_of(runs_) for name, runs_ in figures.items()}
    print(f"status polling: {results['status_polling']}", flush=True)


def templates_against_builtin(tmp: Path, pairs: int, seconds: float, results: Dict) -> None:
    """Delivery at 16 connections with the example templates against the built-in rendering: a fresh
    daemon of each in turn, `pairs` times, so that both meet the same drift of a shared machine."""
    fast, fast_port = start_fast_rocketchat()
    builtin: List[Dict[str, float]] = []
    templated: List[Dict[str, float]] = []
    try:
        for _ in range(pairs):
            for settings, runs_ in (({}, builtin), (TEMPLATE_SETTINGS, templated)):
                daemon, port = start_rcwebhook(tmp, fast_port, **settings)
                try:
                    cpu = daemon.cpu_seconds()
                    figures = load(port, 16, seconds)
                    # CPU time per notification: what the rendering costs, whatever else the machine runs
                    figures["cpu_ms"] = (daemon.cpu_seconds() - cpu) * 1000 / max(figures["rps"] * seconds, 1)
                    runs_.append(figures)
                finally:
                    daemon.stop()
    finally:
        fast.stop()
    ratios = [t["rps"] / b["rps"] for b, t in zip(builtin, templated)]
    cpu_ratios = [b["cpu_ms"] / t["cpu_ms"] for b, t in zip(builtin, templated)]
    results["templates"] = {"builtin": median_of(builtin), "templated": median_of(templated),
                            "ratios": ratios, "ratio": statistics.median(ratios), "pairs": pairs,
                            "cpu_ratios": cpu_ratios, "cpu_ratio": statistics.median(cpu_ratios)}
    print(f"templates: {results['templates']}", flush=True)


def start_to_healthy(tmp: Path, runs: int, results: Dict) -> None:
    times = []
    for _ in range(max(runs, 5)):
        port = free_port()
        started = time.monotonic()
        process = Process([sys.executable, str(ROOT / "rcwebhook.py"), "--config", "/dev/null", "--dry-run"],
                          {"PORT": str(port)})
        try:
            wait_ready(port)
            times.append(time.monotonic() - started)
        finally:
            process.stop()
    results["start_to_healthy"] = statistics.median(times)
    print(f"start to healthy: {times}", flush=True)


def health_while_slow(tmp: Path, runs: int, results: Dict) -> None:
    """/health latency while Rocket.Chat takes 2 s per post and 64 notifications are in flight."""
    slow, slow_port = start_fast_rocketchat(delay=2.0)
    daemon, port = start_rcwebhook(tmp, slow_port)
    template = EXAMPLE.read_text()
    figures = []
    try:
        for run in range(runs):
            in_flight = []

            def notify(i: int) -> int:
                body = template.replace('"groupKey": "', f'"groupKey": "slow-{run}-{i}-').replace(
                    '"fingerprint": "', f'"fingerprint": "slow-{run}-{i}-')
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
                status = conn.getresponse().status
                conn.close()
                return status

            with ThreadPoolExecutor(64) as pool:
                in_flight = [pool.submit(notify, i) for i in range(64)]
                time.sleep(0.5)  # let the 64 notifications arrive and wait on the slow Rocket.Chat
                latencies, statuses = [], []
                for _ in range(200):
                    started = time.monotonic()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/health")
                    statuses.append(conn.getresponse().status)
                    latencies.append(time.monotonic() - started)
                    conn.close()
                busy = sum(1 for f in in_flight if not f.done())
                answers = [f.result() for f in in_flight]
            latencies.sort()
            figures.append({"p50": latencies[100], "p99": latencies[198], "ok": statuses.count(200),
                            "in_flight_after": busy, "answers": {s: answers.count(s) for s in set(answers)}})
            print(f"health while slow: {figures[-1]}", flush=True)
    finally:
        daemon.stop()
        slow.stop()
    results["health_while_slow"] = {
        "p50": statistics.median(f["p50"] for f in figures),
        "p99": statistics.median(f["p99"] for f in figures),
        "ok": min(f["ok"] for f in figures),
        "in_flight_after": min(f["in_flight_after"] for f in figures),
        "answers": figures[-1]["answers"],
    }


def storm(tmp: Path, runs: int, results: Dict) -> None:
    """1,000 alerts in 100 groups for one hook, Rocket.Chat's default limit enforced (10 posts / 60 s).

    The client behaves as Alertmanager does: it retries a 5xx answer after 0.5 s, x1.5.
    """
    figures = []
    for run in range(runs):
        with RocketChatStandin(rate_limit=10, rate_window=60) as standin:
            url = standin.add_hook("critical")
            port = free_port()
            daemon = Process([sys.executable, str(ROOT / "rcwebhook.py"), "--config", "/dev/null"],
                             {"PORT": str(port), "ROCKETCHAT_WEBHOOK_CRITICAL": url, "DEFAULT_SEVERITY": "critical"},
                             tmp / f"storm-{run}.log")
            try:
                wait_ready(port)

                def group(g: int) -> int:
                    body = json.dumps({"groupKey": f"storm-{run}-{g}", "status": "firing", "alerts": [
                        {"status": "firing", "fingerprint": f"{run}-{g}-{i}",
                         "labels": {"alertname": f"Storm{g:03d}", "severity": "critical", "instance": f"host{i}"},
                         "annotations": {"summary": "disk full", "description": "d" * 200}} for i in range(10)]})
                    delay, answers = 0.5, 0
                    while True:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                        try:
                            conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
                            status = conn.getresponse().status
                        except (OSError, http.client.HTTPException):
                            status = 599  # no answer: Alertmanager retries that too
                        finally:
                            conn.close()
                        answers += 1
                        if status < 500:
                            return answers
                        time.sleep(delay)
                        delay *= 1.5

                started = time.monotonic()
                with ThreadPoolExecutor(100) as pool:
                    tries = list(pool.map(group, range(100)))
                delivered = sum(len(m["attachments"]) for m in standin.messages("critical"))
                last = max(r["at"] for r in standin.requests("critical"))
                figures.append({"notifications": 100, "alerts": delivered, "posts": len(standin.requests("critical")),
                                "429s": standin.count_429("critical"), "seconds": last - started,
                                "answers": sum(tries)})
                print(f"storm: {figures[-1]}", flush=True)
            finally:
                daemon.stop()
    results["storm"] = {key: statistics.median(f[key] for f in figures) for key in figures[0]}


# --- the report -----------------------------------------------------------------------------------

def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load from {'wrk' if shutil.which('wrk') else 'Python threads'}")


def report(results: Dict, runs: int, seconds: float) -> str:
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    sp = results["status_polling"]
    lines = [
        "# rcwebhook benchmark results",
        "",
        f"Measured {results['date']} on {results['machine']}, by `make bench` (bench/run.py).",
        f"Each figure is the median of {runs} runs of {seconds:g} s; everything on loopback. The stand-in",
        "Rocket.Chat (bench/fast_rocketchat.py) answers at once; rcwebhook's own pacing is off for the",
        "throughput runs, and every notification carries a new groupKey and new fingerprints.",
        "",
        "## /webhook with examples/test-alert.json (two alerts, two routes)",
        "",
        "| connections | delivery: notifications/s | p50 | p99 | dry-run: notifications/s | p50 | p99 | bare server: requests/s | dry-run / bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CONNECTIONS:
        d, r, b = results[f"delivery_{c}"], results[f"dry-run_{c}"], results[f"bare_{c}"]
        lines.append(f"| {c} | {d['rps']:.0f} | {ms(d['p50'])} | {ms(d['p99'])} | {r['rps']:.0f} | {ms(r['p50'])} | "
                     f"{ms(r['p99'])} | {b['rps']:.0f} | {r['rps'] / b['rps']:.2f} |")
    posts = results.get("fast_rocketchat")
    quiet = results["dry-run-quiet_16"]
    lines += [
        "",
        "Dry-run logs every rendered message at INFO (three lines per notification, two of them about",
        f"1.2 KB of JSON). With LOG_LEVEL=WARNING, dry-run at 16 connections does {quiet['rps']:.0f}/s, "
        f"{quiet['rps'] / results['bare_16']['rps']:.2f} of the bare server: logging is most of the gap.",
        "",
        f"Non-2xx answers during the delivery runs: {sum(results[f'delivery_{c}']['errors'] for c in CONNECTIONS):.0f}.",
        "",
        f"With STATE_DIR set (every accepted post's alert states written to SQLite), delivery at 16 connections "
        f"does {results['delivery-state_16']['rps']:.0f}/s (p99 {ms(results['delivery-state_16']['p99'])}), "
        f"{results['delivery-state_16']['rps'] / results['delivery_16']['rps']:.2f} of the rate with the state in "
        f"memory only; {results['delivery-state_16']['rss_kib'] / 1024:.1f} MiB resident.",
        (f"The stand-in Rocket.Chat took {posts['posts']} posts carrying {posts['attachments']} alerts in the delivery "
         "runs: waiting messages for one hook are merged, so under load a notification costs fewer than two posts."
         if posts else ""),
        "",
        "## /webhook with the example templates",
        "",
        "Delivery at 16 connections with examples/templates/builtin.tmpl rendering the headline and every",
        "attachment's title and text (`TEMPLATE_TEXT=rc.text`, `TEMPLATE_ATTACHMENT_TITLE=rc.title`,",
        "`TEMPLATE_ATTACHMENT_TEXT=rc.attachment`), against the built-in rendering; each pair of runs",
        f"alternated ({results['templates']['pairs']} pairs of {seconds:g} s, a fresh daemon each):",
        "",
        "| | notifications/s (median) | p50 | p99 | rcwebhook's CPU time per notification |",
        "|---|---|---|---|---|",
    ] + [
        f"| {name} | {results['templates'][key]['rps']:.0f} | {ms(results['templates'][key]['p50'])} | "
        f"{ms(results['templates'][key]['p99'])} | {results['templates'][key]['cpu_ms']:.2f} ms |"
        for name, key in (("built-in", "builtin"), ("templates", "templated"))
    ] + [
        "",
        f"Templated / built-in throughput, pair by pair: "
        f"{', '.join(f'{r:.2f}' for r in results['templates']['ratios'])}; median {results['templates']['ratio']:.2f}.",
        f"Built-in / templated CPU time per notification (rcwebhook's user and system time over the run): "
        f"{', '.join(f'{r:.2f}' for r in results['templates']['cpu_ratios'])}; median "
        f"{results['templates']['cpu_ratio']:.2f}. Both swing with the other load of a shared machine: compare "
        "several runs.",
        "",
        "## Resources",
        "",
        "| | resident memory | threads |",
        "|---|---|---|",
        f"| idle, after start | {results['idle_delivery']['VmRSS'] / 1024:.1f} MiB | {results['idle_delivery']['Threads']} |",
    ]
    for c in CONNECTIONS:
        d = results[f"delivery_{c}"]
        lines.append(f"| delivering at {c} connections (highest sample) | {d['rss_kib'] / 1024:.1f} MiB | {d['threads']:.0f} |")
    lines += [
        f"| peak over all delivery runs (VmHWM) | {results['peak_delivery']['VmHWM'] / 1024:.1f} MiB | |",
        "",
        f"Start to the first successful /health: {ms(results['start_to_healthy'])} (median of 5).",
        "",
        "## /health while Rocket.Chat takes 2 s per post and 64 notifications are in flight",
        "",
        f"p50 {ms(results['health_while_slow']['p50'])}, p99 {ms(results['health_while_slow']['p99'])} over 200 requests "
        f"(each on a new connection); {results['health_while_slow']['ok']} of 200 answered 200. "
        f"The 64 notifications were answered {results['health_while_slow']['answers']}.",
        "",
        "## /webhook while /status is fetched in a loop",
        "",
        "Delivery at 16 connections, alone, while one client fetches the HTML /status page in a loop on a",
        "kept-alive connection, and, for reference, while it fetches /health so (the runs alternated):",
        "",
        "| | notifications/s | p50 | p99 | fetches/s | fetch p50 | fetch p99 |",
        "|---|---|---|---|---|---|---|",
        f"| without polling | {sp['without']['rps']:.0f} | {ms(sp['without']['p50'])} | {ms(sp['without']['p99'])} "
        "| | | |",
    ] + [
        f"| {path} polled | {sp[name]['rps']:.0f} | {ms(sp[name]['p50'])} | {ms(sp[name]['p99'])} | "
        f"{sp[name + '_fetches']['per_second']:.0f} | {ms(sp[name + '_fetches']['p50'])} | "
        f"{ms(sp[name + '_fetches']['p99'])} |"
        for name, path in (("status", "/status"), ("health", "/health"))
    ] + [
        "",
        f"/webhook kept {sp['status']['rps'] / sp['without']['rps']:.2f} of its rate while /status was polled "
        f"without pause, and {sp['health']['rps'] / sp['without']['rps']:.2f} while /health was. A browser "
        "fetches /status every 30 s.",
        "",
        "## Alert storm",
        "",
        "1,000 alerts in 100 groups (100 notifications) for one hook, Rocket.Chat's default rate limit",
        "(10 posts per 60 s) enforced by the validating stand-in (tests/rocketchat_standin.py), the client",
        "retrying 5xx answers as Alertmanager does:",
        "",
        f"- alerts delivered: {results['storm']['alerts']:.0f} of 1,000",
        f"- posts made: {results['storm']['posts']:.0f}; 429s seen: {results['storm']['429s']:.0f}",
        f"- time until the last alert was delivered: {results['storm']['seconds']:.2f} s",
        f"- requests Alertmanager would have made (retries included): {results['storm']['answers']:.0f}",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    d16, r16, b16 = results["delivery_16"], results["dry-run_16"], results["bare_16"]
    rss = max(results[f"delivery_{c}"]["rss_kib"] for c in CONNECTIONS) / 1024
    targets = [
        ("dry-run throughput at 16 connections at least half of the bare server's", f"{r16['rps'] / b16['rps']:.2f}",
         r16["rps"] / b16["rps"] >= 0.5),
        ("delivery throughput at 16 connections at least 1,200 notifications/s", f"{d16['rps']:.0f}/s", d16["rps"] >= 1200),
        ("resident memory under load below 35 MB", f"{rss * 1.048576:.1f} MB ({rss:.1f} MiB)", rss * 1.048576 < 35),
        ("start to healthy below 300 ms", ms(results["start_to_healthy"]), results["start_to_healthy"] < 0.3),
        ("/health p99 below 50 ms while Rocket.Chat is slow", ms(results["health_while_slow"]["p99"]),
         results["health_while_slow"]["p99"] < 0.05),
        ("delivery with STATE_DIR within 10% of the state in memory (16 connections)",
         f"{results['delivery-state_16']['rps'] / d16['rps']:.2f}", results['delivery-state_16']['rps'] >= 0.9 * d16['rps']),
        ("/webhook at 16 connections while /status is polled without pause within 10% of without",
         f"{sp['status']['rps'] / sp['without']['rps']:.2f}", sp["status"]["rps"] >= 0.9 * sp["without"]["rps"]),
        ("delivery with the example templates at least 80% of the built-in rendering's (16 connections, median "
         "of the pairs)", f"{results['templates']['ratio']:.2f}", results["templates"]["ratio"] >= 0.8),
        ("alert storm: no 429, nothing lost", f"{results['storm']['429s']:.0f} 429s, {results['storm']['alerts']:.0f} alerts",
         results["storm"]["429s"] == 0 and results["storm"]["alerts"] == 1000),
    ]
    for name, measured, met in targets:
        lines.append(f"| {name} | {measured} | {'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from bench/results.json")
    parser.add_argument("--only", choices=["status-polling", "templates"], help="run one measurement and print it")
    parser.add_argument("--pairs", type=int, default=TEMPLATE_PAIRS, help="built-in and templated runs alternated")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((BENCH / "results.json").read_text())
        Path(args.output).write_text(report(results, args.runs, args.seconds))
        return 0
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"rcwebhook-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    results: Dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    if args.only == "status-polling":
        status_polling(tmp, args.runs, args.seconds, results)
        return 0
    if args.only == "templates":
        templates_against_builtin(tmp, args.pairs, args.seconds, results)
        return 0
    throughput(tmp, args.runs, args.seconds, results)
    status_polling(tmp, args.runs, args.seconds, results)
    templates_against_builtin(tmp, args.pairs, args.seconds, results)
    start_to_healthy(tmp, args.runs, results)
    health_while_slow(tmp, args.runs, results)
    storm(tmp, args.runs, results)
    (BENCH / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    Path(args.output).write_text(report(results, args.runs, args.seconds))
    print(Path(args.output).read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
