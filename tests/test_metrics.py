"""Process metrics as the unit's sandbox lets rcwebhook read them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# A process that has run for 2 s reads its process_start_time_seconds while /proc/stat is hidden,
# as under the unit's ProcSubset=pid, and reports it beside the kernel's figures.
PROBE = """
import builtins, json, os, time
time.sleep(2)
with open("/proc/stat") as f:
    boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
with open("/proc/self/stat") as f:
    text = f.read()
ticks = int(text[text.rindex(")") + 2:].split()[19])
real_open = builtins.open
def hidden(path, *args, **kwargs):
    if str(path) == "/proc/stat":
        raise FileNotFoundError(2, "No such file or directory", path)
    return real_open(path, *args, **kwargs)
builtins.open = hidden
from rcwebhook.operations import metrics
[gauge] = [m for m in metrics._process_metrics() if m.name == "process_start_time_seconds"]
print(json.dumps({"reported": float(gauge.lines()[-1].split()[-1]),
                  "kernel": boot + ticks / os.sysconf("SC_CLK_TCK"), "now": time.time()}))
"""


def test_start_time_is_the_kernels_even_without_proc_stat():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, cwd=ROOT)
    figures = json.loads(result.stdout)
    # btime is in whole seconds: the kernel's start time is known to within 1 s, and is 2 s before now.
    assert 0 <= figures["reported"] - figures["kernel"] < 1.01, figures
    assert figures["now"] - figures["reported"] >= 1.9, figures
