"""Compare delivery throughput at 16 connections with another tree of rcwebhook, on this machine, now.

    python3 bench/compare.py OTHER_TREE [RUNS]

Runs the other tree, this tree, and this tree with STATE_DIR, in turn, RUNS times (3), each for 5 s
under wrk (bench/vary.lua: new groupKey and fingerprints per request) against the fast stand-in
Rocket.Chat, and prints the medians: both trees meet the same load and the same machine state.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import run as bench

HERE = Path(__file__).resolve().parent.parent


def measure(root: Path, extra: Optional[Dict[str, str]] = None) -> Tuple[float, float, float]:
    """Return (notifications/s, p99 seconds, peak resident MiB) of one 5 s run of `root`."""
    fast, fast_port = bench.start_fast_rocketchat()
    port = bench.free_port()
    env = {**os.environ, "PORT": str(port), "ROCKETCHAT_RATE_LIMIT": "0", **(extra or {}),
           **{f"ROCKETCHAT_WEBHOOK_{r.upper()}": f"http://127.0.0.1:{fast_port}/hooks/{r}/token-{r}"
              for r in ("critical", "warning", "info")}}
    process = subprocess.Popen([sys.executable, str(root / "rcwebhook.py"), "--config", "/dev/null"], env=env,
                               stderr=subprocess.DEVNULL, cwd=root)
    try:
        bench.wait_ready(port)
        figures = bench.load(port, 16, 5.0)
        peak = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{process.pid}/status").read_text()).group(1)) / 1024
    finally:
        process.terminate()
        process.wait()
        fast.stop()
    return figures["rps"], figures["p99"], peak


def main() -> int:
    other = Path(sys.argv[1]).resolve()
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results: Dict[str, list] = {"other tree": [], "this tree": [], "this tree, STATE_DIR": []}
    with tempfile.TemporaryDirectory() as state:
        for i in range(runs):
            results["other tree"].append(measure(other))
            results["this tree"].append(measure(HERE))
            results["this tree, STATE_DIR"].append(measure(HERE, {"STATE_DIR": f"{state}/{i}"}))
    for name, samples in results.items():
        print(f"{name}: {statistics.median(s[0] for s in samples):.0f} notifications/s, "
              f"p99 {statistics.median(s[1] for s in samples) * 1000:.1f} ms, "
              f"peak {max(s[2] for s in samples):.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
