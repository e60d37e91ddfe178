"""What a hostile notification costs rcwebhook: CPU, memory, and whether /health stays quick.

`python3 bench/hostile.py` (or `make bench-hostile`) starts rcwebhook (delivering to
bench/fast_rocketchat.py) once per case, sends the case's requests, and reports the server's
CPU seconds (utime + stime from /proc), the growth of its peak resident memory (VmHWM) and
the answers, and writes them to bench/HOSTILE.md; the caps they justify are documented in
README.md ("On an untrusted network").
"""

from __future__ import annotations

import http.client
import collections
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Tuple

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import EXAMPLE, ROOT, free_port, start_fast_rocketchat, start_rcwebhook, wait_ready  # noqa: E402

MIB = 1024 * 1024
BODY_LIMIT = 4 * MIB  # MAX_BODY_BYTES's default


def cpu_seconds(pid: int) -> float:
    """Return the process's user + system CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(port: int, body: bytes, timeout: float = 120) -> Tuple[int, int, float]:
    """Return (status, answer bytes, seconds) of one POST /webhook."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, len(data), time.monotonic() - started
    finally:
        conn.close()


def fill(make: Callable[[int], str], limit: int = BODY_LIMIT - 256) -> bytes:
    """Return a notification whose alerts list, made of make(i) items, fills `limit` bytes."""
    items: List[str] = []
    size = 0
    i = 0
    while True:
        item = make(i)
        if size + len(item) + 1 > limit:
            break
        items.append(item)
        size += len(item) + 1
        i += 1
    return ('{"receiver":"r","status":"firing","groupKey":"g","alerts":[' + ",".join(items) + "]}").encode()


def realistic(i: int) -> str:
    return json.dumps({
        "status": "firing",
        "labels": {"alertname": "NodeDown", "severity": ("critical", "warning", "info")[i % 3],
                   "instance": f"node-{i}.example.com:9100", "job": "node"},
        "annotations": {"summary": f"node-{i} is down", "description": "It answered no scrape for 5 minutes."},
        "startsAt": "2026-01-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
        "fingerprint": f"{i:016x}",
    }, separators=(",", ":"))


def cases() -> Dict[str, Callable[[], List[bytes]]]:
    """Return each case: a function giving the request bodies to send one after another."""
    big_url = "http://prometheus.example.com/graph?g0.expr=" + "x" * (MIB - 100)

    def big_urls() -> List[bytes]:
        return [json.dumps({"groupKey": f"g{n}", "alerts": [{"labels": {"alertname": "A"},
                            "generatorURL": f"{big_url}{n}"}]}).encode() for n in range(300)]

    pairs = []
    size = 0
    while size < BODY_LIMIT - 1024:
        pairs.append(f'"k{len(pairs)}":"v"')
        size += len(pairs[-1]) + 1
    one_label_map = ('{"alerts":[{"labels":{' + ",".join(pairs) + "}}]}").encode()
    return {
        "300 notifications with a 1 MB generatorURL each": big_urls,
        "4 MiB of empty alerts {}": lambda: [fill(lambda i: "{}")],
        "4 MiB of alerts with one label": lambda: [fill(lambda i: '{"labels":{"alertname":"A%d"}}' % i)],
        "4 MiB of realistic alerts": lambda: [fill(realistic)],
        "one alert with a 4 MiB label map": lambda: [one_label_map],
        "4 MiB of short strings as alerts": lambda: [fill(lambda i: '"ab"')],
    }


def measure(name: str, bodies: List[bytes], tmp: Path, rocketchat_port: int) -> Dict[str, object]:
    """Return the cost of sending `bodies` to a fresh rcwebhook."""
    process, port = start_rcwebhook(tmp, rocketchat_port, LOG_LEVEL="WARNING", DEDUP_WINDOW="0")
    try:
        time.sleep(0.2)
        before_cpu, before = cpu_seconds(process.proc.pid), process.status()
        statuses: Dict[int, int] = {}
        slowest = 0.0
        largest_answer = 0
        for body in bodies:
            status, size, seconds = post(port, body)
            statuses[status] = statuses.get(status, 0) + 1
            slowest, largest_answer = max(slowest, seconds), max(largest_answer, size)
        after = process.status()
        return {"case": name, "requests": len(bodies), "body": max(len(b) for b in bodies),
                "cpu": cpu_seconds(process.proc.pid) - before_cpu, "slowest": slowest,
                "peak_growth_mib": (after["VmHWM"] - before["VmHWM"]) / 1024,
                "rss_after_mib": after["VmRSS"] / 1024, "statuses": statuses, "answer": largest_answer}
    finally:
        process.stop()


PROBE = """
import http.client, sys, time
port, times = int(sys.argv[1]), []
while sys.stdin.readline().strip() == "probe":
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/health")
    conn.getresponse().read()
    conn.close()
    print(time.monotonic() - started, flush=True)
"""


def health_under_flood(tmp: Path, rocketchat_port: int) -> Dict[str, object]:
    """Send 64 notifications of 4 MiB of realistic alerts at once and time /health meanwhile, from a
    process of its own (in this one, the 64 senders would slow the probe, not rcwebhook)."""
    import subprocess

    body = fill(realistic)
    process, port = start_rcwebhook(tmp, rocketchat_port, LOG_LEVEL="WARNING", DEDUP_WINDOW="0",
                                    MAX_CONNECTIONS="128")
    prober = subprocess.Popen([sys.executable, "-c", PROBE, str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        times: List[float] = []
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                prober.stdin.write("probe\n")
                prober.stdin.flush()
                times.append(float(prober.stdout.readline()))
                done.wait(0.05)

        thread = threading.Thread(target=probe)
        before = process.status()
        thread.start()
        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(lambda _: post(port, body), range(64)))
        done.set()
        thread.join()
        after = process.status()
        statuses: Dict[int, int] = {}
        for status, _, _ in results:
            statuses[status] = statuses.get(status, 0) + 1
        return {"health_max": max(times), "health_p50": statistics.median(times), "probes": len(times),
                "statuses": statuses, "slowest": max(r[2] for r in results),
                "peak_growth_mib": (after["VmHWM"] - before["VmHWM"]) / 1024}
    finally:
        prober.stdin.close()
        prober.wait(10)
        process.stop()


# --- a connection flood -------------------------------------------------------------------

FLOOD_CLIENT = BENCH.parent / "tests" / "flood_client.py"
NOTIFICATION = (BENCH.parent / "examples" / "test-alert.json").read_bytes()


def certificate(tmp: Path) -> Tuple[Path, Path]:
    """Return a self-signed certificate and its key for 127.0.0.1, made by openssl."""
    import subprocess

    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def connection(port: int, tls: bool, timeout: float) -> http.client.HTTPConnection:
    if not tls:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)


def timed(port: int, tls: bool, method: str, path: str, body: bytes = None, timeout: float = 10) -> Tuple[int, float]:
    """Return (status, seconds) of one request on a new connection; status 0 when it failed."""
    started = time.monotonic()
    conn = connection(port, tls, timeout)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return 0, time.monotonic() - started
    finally:
        conn.close()


def percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def flood_case(tmp: Path, rocketchat_port: int, tls: bool, count: int = 500, seconds: float = 30,
               deadline: float = 10.0) -> Dict[str, object]:
    """Flood a fresh rcwebhook with `count` connections for `seconds` while valid notifications are sent
    (four senders, one after another on new connections) and /health is probed, and return what they got."""
    import subprocess

    extra = {}
    if tls:
        cert, key = certificate(tmp)
        extra = {"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)}
    process, port = start_rcwebhook_any(tmp, rocketchat_port, tls, DEDUP_WINDOW="0",
                                        DELIVERY_DEADLINE=f"{deadline:g}", **extra)
    flooder = subprocess.Popen([sys.executable, str(FLOOD_CLIENT), str(port), str(count), str(seconds)]
                               + (["--tls"] if tls else []), stdout=subprocess.PIPE, text=True)
    try:
        flooder.stdout.readline()
        time.sleep(2)  # let the flood fill every slot
        end = time.monotonic() + seconds - 4
        notifications: List[Tuple[int, float]] = []
        probes: List[Tuple[int, float]] = []

        def send() -> None:
            while time.monotonic() < end:
                notifications.append(timed(port, tls, "POST", "/webhook", NOTIFICATION, timeout=deadline))
                time.sleep(0.2)

        def probe() -> None:
            while time.monotonic() < end:
                probes.append(timed(port, tls, "GET", "/health", timeout=10))
                time.sleep(0.1)

        workers = [threading.Thread(target=send) for _ in range(4)] + [threading.Thread(target=probe)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        counts = json.loads(flooder.stdout.readline() or "{}")
        flooder.wait(30)
        shed = ""
        try:
            conn = connection(port, tls, 10)
            conn.request("GET", "/metrics")
            shed = " ".join(line.split("{", 1)[1].replace("} ", "=") for line in
                            conn.getresponse().read().decode().splitlines()
                            if line.startswith("rcwebhook_connections_shed_total{"))
            conn.close()
        except (OSError, http.client.HTTPException):
            pass
    finally:
        if flooder.poll() is None:
            flooder.kill()
        process.stop()
    log_text = process.log_path.read_text(errors="replace")
    ok = sum(1 for status, took in notifications if status == 200 and took <= deadline)
    probe_times = [took if status == 200 else float("inf") for status, took in probes]  # a failed probe: the worst
    return {"tls": tls, "count": count, "seconds": seconds, "notifications": len(notifications), "ok": ok,
            "statuses": dict(collections.Counter(status for status, _ in notifications)),
            "health_p50": percentile(probe_times, 0.5), "health_p99": percentile(probe_times, 0.99),
            "health_failed": sum(1 for status, _ in probes if status != 200), "probes": len(probes),
            "flood": counts, "log_bytes": len(log_text.encode()), "tracebacks": log_text.count("Traceback"),
            "shed": shed or "-"}


def start_rcwebhook_any(tmp: Path, rocketchat_port: int, tls: bool, **settings: str):
    """start_rcwebhook, waiting for readiness over HTTPS when `tls`; its log path kept on the process."""
    from run import Process, free_port

    if not tls:
        process, port = start_rcwebhook(tmp, rocketchat_port, **settings)
        process.log_path = tmp / f"rcwebhook-{port}.log"
        return process, port
    port = free_port()
    env = {"PORT": str(port), "ROCKETCHAT_RATE_LIMIT": "0", **settings}
    for route in ("critical", "warning", "info"):
        env[f"ROCKETCHAT_WEBHOOK_{route.upper()}"] = f"http://127.0.0.1:{rocketchat_port}/hooks/{route}/token-{route}"
    process = Process([sys.executable, str(BENCH.parent / "rcwebhook.py"), "--config", "/dev/null"], env,
                      tmp / f"rcwebhook-{port}.log")
    process.log_path = tmp / f"rcwebhook-{port}.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and timed(port, True, "GET", "/health", timeout=1)[0] != 200:
        time.sleep(0.1)
    return process, port


def flood_line(r: Dict[str, object]) -> str:
    return (f"| {r['count']} {'TLS' if r['tls'] else 'plain'} flood connections, {r['seconds']:.0f} s "
            f"| {r['ok']}/{r['notifications']} ({100 * r['ok'] / max(1, r['notifications']):.1f} %) {r['statuses']} "
            f"| {r['health_p50'] * 1000:.0f} ms / {r['health_p99'] * 1000:.0f} ms, {r['health_failed']} of "
            f"{r['probes']} failed | {r['log_bytes'] / 1024:.0f} KiB, {r['tracebacks']} tracebacks | {r['shed']} "
            f"| {r['flood'].get('opened', '?')} opened |")


FLOOD_HEAD = [
    "| flood | notifications answered 200 within DELIVERY_DEADLINE | /health p50 / p99 | server log | shed (metric) "
    "| flood connections |",
    "|---|---|---|---|---|---|",
]


# rcwebhook as under systemd (stderr is the journal's stream), with the journal's socket at another path.
JOURNALED = """
import functools, sys
from rcwebhook import cli
from rcwebhook.operations import logs
logs.build_handlers = functools.partial(logs.build_handlers, journal_socket=sys.argv[1])
sys.exit(cli.main(["--config", "/dev/null"]))
"""


def stalled_journal(tmp: Path, rocketchat_port: int, root: Path = ROOT, count: int = 20,
                    patience: float = 15.0) -> Dict[str, object]:
    """Send `count` notifications one after another to an rcwebhook whose journal does not read: its socket's
    queue full, its stream (stderr) a pipe of one page that nobody reads. Return each answer's status and
    seconds (None: no answer within `patience`) and the entries counted as dropped."""
    import fcntl
    import socket
    import subprocess

    path = str(tmp / "journal-socket")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(path)
    # One sender stops at its own send buffer, which may come before the queue is full (journald's
    # net.unix.max_dgram_qlen is 512 where systemd sets it, 10 by the kernel's default): senders are
    # added until a new one cannot send at all.
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
            filler.setblocking(False)
            sent = 0
            try:
                while True:
                    filler.sendto(b"MESSAGE=filler\n", path)
                    sent += 1
            except BlockingIOError:
                if sent == 0:
                    break
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    stream = os.fstat(write_end)
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root), "PORT": str(port), "LOG_LEVEL": "INFO",
           "JOURNAL_STREAM": f"{stream.st_dev}:{stream.st_ino}", "ROCKETCHAT_RATE_LIMIT": "0",
           "ROCKETCHAT_WEBHOOK_CRITICAL": f"http://127.0.0.1:{rocketchat_port}/hooks/critical/token-critical",
           "ROCKETCHAT_WEBHOOK_WARNING": f"http://127.0.0.1:{rocketchat_port}/hooks/warning/token-warning"}
    process = subprocess.Popen([sys.executable, "-c", JOURNALED, path], env=env, cwd=str(tmp),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    answers: List[Tuple[object, object]] = []
    try:
        wait_ready(port)
        example = json.loads(EXAMPLE.read_text())
        for i in range(count):
            for alert in example["alerts"]:
                alert["startsAt"] = f"2030-01-01T00:{i:02d}:00Z"
            try:
                status, _, seconds = post(port, json.dumps(example).encode(), timeout=patience)
                answers.append((status, seconds))
            except OSError:
                answers.append((None, None))
        dropped, settled = 0.0, time.monotonic() + 5  # the writer gives the journal 0.2 s before its first drop
        while not dropped and time.monotonic() < settled:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=patience)
                conn.request("GET", "/metrics")
                metrics = conn.getresponse().read().decode()
                conn.close()
            except OSError:
                break
            dropped = sum(float(line.split()[-1]) for line in metrics.splitlines()
                          if line.startswith("rcwebhook_log_entries_dropped_total{"))
            time.sleep(0.1)
        return {"answers": answers, "dropped": dropped}
    finally:
        threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_end, 65536), b"")],
                         daemon=True).start()  # let it write what it holds, to stop
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        journal.close()


def describe_stalled(result: Dict[str, object]) -> str:
    """Return one line of the stalled-journal case's figures."""
    answers = result["answers"]
    timed = [seconds for status, seconds in answers if status is not None]
    statuses: Dict[object, int] = {}
    for status, _ in answers:
        statuses[status if status is not None else "no answer"] = statuses.get(status if status is not None
                                                                              else "no answer", 0) + 1
    first_lost = next((i + 1 for i, (status, _) in enumerate(answers) if status != 200), None)
    return (f"answers {statuses}" + (f", the first not answered 200 was number {first_lost}" if first_lost else "")
            + (f", slowest answer {max(timed) * 1000:.0f} ms, median {statistics.median(timed) * 1000:.1f} ms"
               if timed else "") + f"; log entries counted as dropped: {result['dropped']:.0f}")


STALLED = """A stalled journal (bench/hostile.py `stalled_journal`): rcwebhook started as under systemd, its
stderr the journal's stream, with journald's socket full and not read, and that stream a pipe of one
page (4 KiB) nobody reads; 20 notifications sent one after another, each given 15 s."""

STALLED_BEFORE = """Before (commit 9e7702c, where an entry the journal's socket refused fell back to stderr, written by
the thread that logged it): answers {200: 7, 'no answer': 13}: the first seven notifications' lines
filled the pipe, and from the eighth on every request thread hung in that write (none answered
within 15 s)."""


EARLIER = """Before the caps (the same cases, with the URL cache, the payload parser and the pipeline as on
commit 683586b): the 300 long URLs left the daemon at 785 MiB resident (the URL cache and
urlsplit's own cache kept them all); 4 MiB of empty alerts took 14.1 s of CPU and 581 MiB, and
was answered 503 after 17 s with a 16 MB answer; 4 MiB of one-label alerts took 1.9 s and
116 MiB; 64 realistic 4 MiB notifications at once, all parsed at the same time, grew memory by
1280 MiB and stalled /health for up to 5.7 s (probed then from the sending process, which
overstates it somewhat).

What the caps leave: the 64 bodies themselves (`MAX_CONNECTIONS` x `MAX_BODY_BYTES`, 256 MiB)
are held while they wait their turn, and the notifications not prepared within
`DELIVERY_DEADLINE` are answered 503, which Alertmanager retries.

/health under that flood: before connections were served by threads started ahead, the serving
loop waited 5 to 90 ms for each new connection's thread to start, so a probe that arrived with
the 64 notifications waited behind them to be accepted, and json.loads held the interpreter lock
some 40 ms per body: the slowest probe took 0.5 to 1.8 s (seven runs). Since then (decoding in
steps, threads started ahead, the one idle the shortest taking the next connection) it takes
0.2 to 0.5 s (six runs); its median is some 30 ms."""


FLOOD_BEFORE = """Before (main at 9e7702c: a connection admitted to one of MAX_CONNECTIONS seats plus 8 spares when accepted,
before it had sent anything, room made by closing the oldest waiting connection whatever it was doing, the
TLS handshake done by the connection's thread), the same bench on the same machine:

| flood | notifications answered 200 within DELIVERY_DEADLINE | /health p50 / p99 | server log | shed (metric) | flood connections |
|---|---|---|---|---|---|
| 500 plain flood connections, 30 s | 334/447 (74.7 %) {200: 334, 0: 113} | 5 ms / failed, 42 of 206 failed | 435 KiB, 0 tracebacks | (none) | 143141 opened |
| 500 TLS flood connections, 30 s | 74/280 (26.4 %) {0: 206, 200: 74} | 136 ms / failed, 74 of 104 failed | 31097 KiB, 37504 tracebacks | (none) | 29747 opened |

(0: the connection was closed or reset without an answer.) Since then a connection waits in the lobby,
without a thread or a seat, for its handshake and its request's whole head; what is shed is chosen by
what it has done (sent nothing, then a head slow since its first byte, then a refused body still
arriving), never a request whose head came whole. Each shed connection is one DEBUG line, counted in
`rcwebhook_connections_shed_total{reason}` and summed up in one WARNING a minute at most."""


def flood_section(tmp: Path, rocketchat_port: int) -> List[str]:
    """Return the flood section of HOSTILE.md: a plain and a TLS flood of 500 connections."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))  # the children inherit it
    import platform
    from datetime import datetime, timezone

    lines = ["## A connection flood", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}, by `make bench-hostile` (or `python3 bench/hostile.py --flood` alone).", "",
             "500 connections that reconnect as soon as they are closed (plain: half idle, half trickling a "
             "request's headers a byte every 0.3 s; TLS: a quarter each idle without a ClientHello, trickling "
             "after the handshake, idle after the handshake, and sending garbage for a ClientHello), against a "
             "fresh rcwebhook (`LOG_LEVEL=INFO`, `MAX_CONNECTIONS=64`, `DELIVERY_DEADLINE=10`), while four "
             "senders post the example notification one after another on new connections and /health is "
             "probed every 0.1 s; then 2000 plain ones, more than the lobby holds (1024). Goal: at least 99 % "
             "answered 200 within `DELIVERY_DEADLINE`, /health under 1 s at the 99th percentile.", ""] + FLOOD_HEAD
    for tls, count in ((False, 500), (True, 500), (False, 2000)):  # 2000: beyond the lobby's 1024
        lines.append(flood_line(flood_case(tmp, rocketchat_port, tls, count)))
        print(lines[-1], flush=True)
    return lines + ["", FLOOD_BEFORE, ""]


REGEXP_ATTACKS = ["(a+)+$", "^(\\w+\\s?)*$", "^([a-z0-9]+(-[a-z0-9]+)*\\.?)+$"]


def regexp_section() -> List[str]:
    """Template regular expressions on hostile label values: the regexp engine's time for each of the patterns
    that make a backtracking engine (Python's re) take time exponential in the value's length."""
    import re
    import timeit
    sys.path.insert(0, str(BENCH.parent))
    from rcwebhook.amtemplate import functions as amfunctions
    funcs = amfunctions.functions()
    match, replace = funcs["match"].fn, funcs["reReplaceAll"].fn

    def best(fn: Callable[[], object]) -> float:
        return min(timeit.repeat(fn, number=1, repeat=5))

    bad, good = "a" * 9_999 + "!", "a" * 10_000
    from datetime import datetime, timezone
    lines = ["## Template regular expressions", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `python3 bench/hostile.py regexp` "
             "(the section `make bench-hostile` ends with).",
             "Each pattern (one a backtracking engine takes exponential time on) on a 10,000-character label",
             "value, through the template functions (`match`, `reReplaceAll`), best of 5; goal under 50 ms.",
             "The adversarial value is 9,999 `a` and a `!` (no match); the matching one is 10,000 `a`",
             "(`reReplaceAll` with `<$1>`, so submatches are found too). Python's `re`, used before, on the",
             "adversarial value cut to 22 and 24 characters:", "",
             "| pattern | match (adversarial) | reReplaceAll (adversarial) | match (matching) "
             "| reReplaceAll `<$1>` (matching) | before: `re`, 22 chars | 24 chars |",
             "|---|---|---|---|---|---|---|"]
    for pattern in REGEXP_ATTACKS:
        amfunctions.compile_regexp(pattern)  # compiled once per pattern, as a template's literal is
        figures = [best(lambda: match(pattern, bad)), best(lambda: replace(pattern, "x", bad)),
                   best(lambda: match(pattern, good)), best(lambda: replace(pattern, "<$1>", good))]
        compiled = re.compile(pattern.replace("$", "\\Z"))
        before = [best(lambda: compiled.search("a" * (n - 1) + "!")) for n in (22, 24)]
        lines.append(f"| `{pattern}` | " + " | ".join(f"{f * 1000:.1f} ms" for f in figures) + " | "
                     + " | ".join(f"{f:.2f} s" for f in before) + " |")
        print(lines[-1], flush=True)
    import random
    rng = random.Random(1)
    ab = "".join(rng.choice("ab") for _ in range(10_000))
    worst = "(a|b)*a(a|b){20}c"  # a DFA of 2^20 states: the cache fills and starts again over and over
    amfunctions.compile_regexp(worst)
    cold = best(lambda: match(worst, ab))
    return lines + ["", "Each two more characters multiply `re`'s time by about four: 34 characters took 40 s "
                        "in the daemon, with the interpreter lock held the whole time.", "",
                    f"The worst case for the regexp engine's DFA cache, `{worst}` (2^20 states) on 10,000 random `a` and `b`: "
                    f"`match` {cold * 1000:.0f} ms, about {cold * 100:.0f} µs a character, still linear.", "",
                    "Linear time is per search, in Go as here: `reReplaceAll` searches again after each match, and a "
                    "pattern whose first alternative looks far ahead, `a.*z|a`, makes each search read to the end: "
                    f"on 4,000 `a` it takes {best(lambda: replace('a.*z|a', 'b', 'a' * 4_000)):.2f} s here (Go's own "
                    "amtool 0.28.1 takes 20 s on 40,000 and 87 s on 80,000). Only a rendering time budget bounds "
                    "that.", ""]


def main() -> None:
    import platform
    from datetime import datetime, timezone

    if sys.argv[1:] == ["regexp"]:  # only the regular expressions (seconds, no daemon)
        print("\n".join(regexp_section()))
        return

    if sys.argv[1:] == ["--flood"]:  # only the flood, its section of HOSTILE.md replaced
        with tempfile.TemporaryDirectory() as folder:
            rocketchat, rocketchat_port = start_fast_rocketchat()
            try:
                section = flood_section(Path(folder), rocketchat_port)
            finally:
                rocketchat.stop()
        text = (BENCH / "HOSTILE.md").read_text()
        start = text.find("## A connection flood")
        end = text.find("\n## ", start + 1) if start >= 0 else -1
        before, after = (text, "") if start < 0 else (text[:start], "" if end < 0 else text[end + 1:])
        text = before.rstrip("\n") + "\n\n" + "\n".join(section) + ("\n" + after if after else "")
        (BENCH / "HOSTILE.md").write_text(text)
        print(f"wrote {BENCH / 'HOSTILE.md'}")
        return
    lines = [
        "# What hostile input costs rcwebhook",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, by `make bench-hostile` (bench/hostile.py): a fresh rcwebhook per case",
        "(delivering to bench/fast_rocketchat.py, `LOG_LEVEL=WARNING`), the server's CPU seconds and the",
        "growth of its peak resident memory (VmHWM) over the case. The caps are described in README.md",
        '("On an untrusted network").',
        "",
        "| case | requests | body | server CPU | slowest answer | peak memory growth | resident after | answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        rocketchat, rocketchat_port = start_fast_rocketchat()
        try:
            for name, make in cases().items():
                r = measure(name, make(), tmp, rocketchat_port)
                lines.append(f"| {r['case']} | {r['requests']} | {r['body'] / MIB:.1f} MiB | {r['cpu']:.2f} s "
                             f"| {r['slowest']:.2f} s | {r['peak_growth_mib']:.1f} MiB | {r['rss_after_mib']:.1f} MiB "
                             f"| {r['statuses']}, answer up to {r['answer']} B |")
                print(lines[-1], flush=True)
            flood = health_under_flood(tmp, rocketchat_port)
            stalled = stalled_journal(tmp, rocketchat_port)
            section = flood_section(tmp, rocketchat_port)
        finally:
            rocketchat.stop()
    lines += ["", f"64 notifications of 4 MiB (realistic alerts) at once: answers {flood['statuses']}, "
                  f"slowest {flood['slowest']:.1f} s, peak memory growth {flood['peak_growth_mib']:.0f} MiB; "
                  f"/health answered {flood['probes']} probes (from a process of their own), median "
                  f"{flood['health_p50'] * 1000:.1f} ms, slowest {flood['health_max'] * 1000:.0f} ms.",
              "", STALLED, "", describe_stalled(stalled) + ".", "", STALLED_BEFORE,
              "", EARLIER, ""] + section
    print("\n".join(lines[-4:]))
    lines += regexp_section()
    (BENCH / "HOSTILE.md").write_text("\n".join(lines))
    print(f"wrote {BENCH / 'HOSTILE.md'}")


if __name__ == "__main__":
    main()
