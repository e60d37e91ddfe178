"""What an idle rcwebhook costs: resident memory once it is ready, before any request, and the time from
its start to its first /health answer, with the built-in rendering and with templates; `make bench` runs
it and writes bench/FOOTPRINT.md.

`python3 bench/footprint.py [--runs N] [--against TREE|COMMIT]`: with --against, another checkout (or a
commit of this repository, exported to a temporary folder) is measured too, its runs alternated with this
tree's, so that both meet the same load of a shared machine. Each figure is the median of the runs.

A run starts rcwebhook as systemd would (NOTIFY_SOCKET), reads its resident memory (VmRSS) when it says
READY=1 and again after a short settle, times its first /health answer from the moment it was started,
then fetches /status once and reads its memory again. The floor is bench/bare_server.py, a bare
ThreadingHTTPServer: the interpreter and http.server, doing nothing.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TEMPLATES = ROOT / "examples" / "templates"
# The example templates of the built-in look, as `make bench` renders them (bench/run.py).
TEMPLATE_SETTINGS = {"TEMPLATE_FILES": str(TEMPLATES / "builtin.tmpl"), "TEMPLATE_TEXT": "rc.text",
                     "TEMPLATE_ATTACHMENT_TITLE": "rc.title", "TEMPLATE_ATTACHMENT_TEXT": "rc.attachment"}
SETTLE = 0.5  # seconds after READY=1 before the idle memory is read: the crew's threads have started
CONFIGS = (("built-in rendering", {}), ("example templates", TEMPLATE_SETTINGS))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def get(port: int, path: str) -> Optional[int]:
    """Return the status of GET `path`, or None when nothing answers yet."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()
    except OSError:
        return None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(tree: Path, settings: Dict[str, str], folder: Path) -> Dict[str, float]:
    """Start rcwebhook of `tree` once; return its memory (KiB) at READY=1, idle and after one /status, and the
    milliseconds from its start to READY=1 and to its first /health answer."""
    port = free_port()
    address = str(folder / f"notify-{port}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(10)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PORT": str(port), "NOTIFY_SOCKET": address, "LOG_LEVEL": "WARNING",
           # Hooks on a port nobody listens on: an idle daemon posts nothing.
           "ROCKETCHAT_WEBHOOK_CRITICAL": f"http://127.0.0.1:{free_port()}/hooks/critical/token-critical",
           "ROCKETCHAT_WEBHOOK_WARNING": f"http://127.0.0.1:{free_port()}/hooks/warning/token-warning",
           **settings}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(tree / "rcwebhook.py"), "--config", "/dev/null"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while b"READY=1" not in listener.recv(4096).split(b"\n"):
            pass
        ready = time.monotonic() - started
        at_ready = rss_kib(process.pid)
        while get(port, "/health") != 200:
            if time.monotonic() - started > 10:
                raise RuntimeError(f"{tree}: /health did not answer within 10 s")
            time.sleep(0.002)
        healthy = time.monotonic() - started
        time.sleep(max(0.0, started + ready + SETTLE - time.monotonic()))
        idle = rss_kib(process.pid)
        if get(port, "/status") != 200:
            raise RuntimeError(f"{tree}: /status did not answer 200")
        return {"ready_ms": ready * 1000, "health_ms": healthy * 1000, "rss_ready": at_ready, "rss_idle": idle,
                "rss_status": rss_kib(process.pid)}
    finally:
        stop(process)
        listener.close()
        os.unlink(address)


def floor() -> Dict[str, float]:
    """Return the memory (KiB) and start time (ms) of a bare ThreadingHTTPServer."""
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(BENCH / "bare_server.py"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while get(port, "/") is None:
            if time.monotonic() - started > 10:
                raise RuntimeError("the bare server did not answer within 10 s")
            time.sleep(0.002)
        healthy = time.monotonic() - started
        time.sleep(SETTLE)
        return {"health_ms": healthy * 1000, "rss_idle": rss_kib(process.pid)}
    finally:
        stop(process)


def export(commit: str, folder: Path) -> Path:
    """Return a folder holding this repository's tree at `commit`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], check=True,
                             capture_output=True).stdout
    target = folder / f"tree-{commit[:12]}"
    target.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target)
    return target


def run(trees: List[Tuple[str, Path]], runs: int) -> Dict:
    """Return every run's figures, by tree and configuration, and the floor's, the runs alternated."""
    results: Dict = {"runs": runs, "trees": [name for name, _ in trees], "floor": [], "figures": {}}
    with tempfile.TemporaryDirectory(prefix="rcwebhook-footprint-") as folder:
        # Once each, not counted: compiles every module the runs load (an installed package ships them
        # compiled), and brings them into the page cache.
        for _, tree in trees:
            for _, settings in CONFIGS:
                measure(tree, settings, Path(folder))
        for number in range(runs):
            results["floor"].append(floor())
            for name, tree in trees:
                for config, settings in CONFIGS:
                    figures = measure(tree, settings, Path(folder))
                    results["figures"].setdefault(name, {}).setdefault(config, []).append(figures)
                    print(f"run {number + 1}/{runs} {name}, {config}: " + ", ".join(
                        f"{key} {value:.1f}" for key, value in figures.items()), flush=True)
    return results


def median(runs: List[Dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(results: Dict, when: str) -> str:
    mib = lambda kib: f"{kib / 1024:.1f} MiB"  # noqa: E731
    floor_runs = results["floor"]
    lines = [
        "# What an idle rcwebhook costs",
        "",
        f"Measured {when} by `python3 bench/footprint.py` (part of `make bench`): medians of {results['runs']} runs "
        "of each,",
        "alternated. Memory is VmRSS: at READY=1 (rcwebhook listening, before any request), idle (half a second",
        "later) and after one GET /status. Start is from the process's start to READY=1 and to its first /health",
        "answer. Two hooks on a port nobody listens on, LOG_LEVEL=WARNING.",
        "",
        "| tree | rendering | at READY=1 | idle | after one /status | start to READY=1 | start to /health |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in results["trees"]:
        for config, _ in CONFIGS:
            runs = results["figures"][name][config]
            lines.append(f"| {name} | {config} | {mib(median(runs, 'rss_ready'))} | {mib(median(runs, 'rss_idle'))} | "
                         f"{mib(median(runs, 'rss_status'))} | {median(runs, 'ready_ms'):.0f} ms | "
                         f"{median(runs, 'health_ms'):.0f} ms |")
    lines += [
        "",
        f"The floor, bench/bare_server.py (the interpreter and http.server, idle): {mib(median(floor_runs, 'rss_idle'))}, "
        f"{median(floor_runs, 'health_ms'):.0f} ms to its first answer.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", help="another checkout's folder, or a commit of this repository")
    parser.add_argument("--output", default=str(BENCH / "FOOTPRINT.md"))
    args = parser.parse_args()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "this tree"
    trees = [(f"this tree ({head})", ROOT)]
    with tempfile.TemporaryDirectory(prefix="rcwebhook-footprint-tree-") as folder:
        if args.against:
            against = Path(args.against)
            trees.insert(0, (args.against, against) if against.is_dir() else
                         (f"commit {args.against[:12]}", export(args.against, Path(folder))))
        results = run(trees, args.runs)
    text = report(results, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
