"""Process metrics as the unit's sandbox lets rcwebhook read them."""

from __future__ import annotations

import http.client
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rcwebhook.config.settings import build
from rcwebhook.messages.notification import parse
from rcwebhook.operations import metrics
from tests.conftest import EXAMPLE_ALERT, ROOT, load_example


def http_get(daemon, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()

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


# --- metrics of modules loaded on demand -------------------------------------------------------------

FAILING_TEMPLATE = '{{ define "t" }}{{ index .Alerts 99 }}{{ end }}'


def template_errors(exposition: bytes) -> float:
    """Return rcwebhook_template_errors_total{part="text"} from a /metrics text; fail when it is not there."""
    for line in exposition.decode().splitlines():
        if line.startswith('rcwebhook_template_errors_total{part="text"} '):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("rcwebhook_template_errors_total is not on /metrics")


def test_a_template_error_is_counted_on_metrics(start_daemon, tmp_path, logs):
    path = tmp_path / "failing.tmpl"
    path.write_text(FAILING_TEMPLATE)
    daemon = start_daemon(DRY_RUN="true", TEMPLATE_FILES=str(path), TEMPLATE_TEXT="t")
    before = template_errors(http_get(daemon, "/metrics"))
    status, _, _ = daemon.post_json(load_example())
    assert status == 200
    assert template_errors(http_get(daemon, "/metrics")) == before + 2  # the example's two routes' messages
    assert "template 't' (TEMPLATE_TEXT) failed, the built-in text is used" in logs.text()


@pytest.fixture
def renamed_templates(monkeypatch):
    """The templates module loaded under another name, as after a rename, with no module of the old name."""
    from rcwebhook.messages import templates

    source = Path(templates.__file__)
    monkeypatch.delitem(sys.modules, templates.__name__)
    spec = importlib.util.spec_from_file_location("rcwebhook.messages.message_templates", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    yield module
    metrics.register(templates.ERRORS, templates.OVER_BUDGET)  # the module the other tests use


def test_the_template_error_counter_stays_on_metrics_whatever_its_module_is_named(renamed_templates, tmp_path):
    path = tmp_path / "failing.tmpl"
    path.write_text(FAILING_TEMPLATE)
    errors: list = []
    settings = build({"DRY_RUN": "true", "TEMPLATE_FILES": str(path), "TEMPLATE_TEXT": "t"}, errors, [])
    loaded = renamed_templates.load(settings, errors)
    assert errors == [] and loaded is not None
    text, _ = loaded.parts(parse(EXAMPLE_ALERT.read_bytes()).alerts, 1, "", 1000)
    assert text is None  # the template failed: the built-in text is used
    assert template_errors(metrics.Metrics().expose()) == 1
