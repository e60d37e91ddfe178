"""The package under a real systemd: Debian 11, 12 and 13 booted in systemd-nspawn (bootmachine.py),
the .deb installed and used as an administrator would, every check against what systemd and the
journal report. One boot per release; the checks of a release run in this file's order, install
first and purge last. RCWEBHOOK_BOOT_SUITES picks releases (default: bullseye bookworm trixie)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from typing import Any, Callable, Dict, List, NamedTuple

import pytest

import bootmachine
from debtools import ROOT, run

SUITES = os.environ.get("RCWEBHOOK_BOOT_SUITES", "bullseye bookworm trixie").split()
SUITE_RELEASE = "trixie"  # the release whose Python runs the test suite
ENV = "/etc/rcwebhook/rcwebhook.env"
DROPINS = "/etc/systemd/system/rcwebhook.service.d"
ALERT = "/usr/share/doc/rcwebhook/examples/test-alert.json"
PROCESS_METRICS = ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                   "process_open_fds", "process_max_fds", "process_start_time_seconds", "process_threads")
# What a filtered system call, a crash or a refused file access leaves in the journal.
VIOLATIONS = re.compile(r"Bad system call|SIGSYS|status=31|Operation not permitted|PermissionError|Traceback|"
                        r"Internal error|core dumped|Permission denied")


class Entry(NamedTuple):
    priority: int
    identifier: str
    message: str


class Booted:
    """A booted release with the package's test files in it, and what the checks ask of it."""

    def __init__(self, machine: bootmachine.Machine) -> None:
        self.machine = machine
        self.suite = machine.suite
        self.hooks: Dict[str, str] = {}
        self.install_output = ""

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.machine.sh(script, **kwargs)

    def prop(self, name: str, unit: str = "rcwebhook") -> str:
        return self.sh(f"systemctl show -p {name} --value {unit}").stdout.strip()

    def mark(self) -> int:
        """Return now, in the journal's microseconds: entries after it are the ones a check made."""
        return int(self.sh("date +%s%6N").stdout)

    def journal(self, since: int, unit: bool = True, priority: str = "") -> List[Entry]:
        """Return the journal entries (of the unit, or all) since `since`, at most `priority` if given."""
        select = "-u rcwebhook" if unit else ""
        level = f"-p {priority}" if priority else ""
        out = self.sh(f"journalctl --sync 2>/dev/null; journalctl -b {select} {level} -o json --no-pager").stdout
        entries = []
        for line in out.splitlines():
            fields = json.loads(line)
            if int(fields["__REALTIME_TIMESTAMP"]) <= since:
                continue
            message = fields.get("MESSAGE", "")
            if isinstance(message, list):
                message = bytes(message).decode("utf-8", "replace")
            entries.append(Entry(int(fields.get("PRIORITY", 6)), fields.get("SYSLOG_IDENTIFIER", ""), message))
        return entries

    def journal_until(self, since: int, condition: Callable[[List[Entry]], Any], what: str,
                      timeout: float = 30, unit: bool = True) -> List[Entry]:
        """Wait until the journal entries since `since` satisfy `condition`, and return them. The daemon writes
        its log from a thread of its own, so an entry can arrive after the answer or exit it tells of."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.journal(since, unit=unit)
            if condition(entries):
                return entries
            assert time.monotonic() < deadline, f"in {self.suite}: waited {timeout:g}s for {what}: {entries}"
            time.sleep(0.2)

    def configure(self, **keys: str) -> None:
        """Write the env file: the packaged example's comments, then these keys."""
        text = "".join(f"{key}={value}\n" for key, value in keys.items())
        self.sh(f"sed -n '/^#/p' /usr/share/doc/rcwebhook/examples/rcwebhook.env > {ENV}.new && "
                f"cat >> {ENV}.new <<'EOF'\n{text}EOF\ncat {ENV}.new > {ENV} && rm {ENV}.new")

    def good_config(self, **extra: str) -> Dict[str, str]:
        keys = {"ROCKETCHAT_WEBHOOK_CRITICAL": self.hooks["critical"], "ROCKETCHAT_WEBHOOK_WARNING": self.hooks["warning"],
                "ROCKETCHAT_WEBHOOK_INFO": self.hooks["info"], "ROCKETCHAT_RATE_LIMIT": "0"}
        keys.update(extra)
        return keys

    def dropin(self, name: str, text: str) -> None:
        self.sh(f"mkdir -p {DROPINS} && printf '[Service]\\n{text}\\n' > {DROPINS}/{name}.conf && systemctl daemon-reload")

    def remove_dropin(self, name: str) -> None:
        self.sh(f"rm -f {DROPINS}/{name}.conf && systemctl daemon-reload")

    def http(self, url: str, *curl: str) -> tuple:
        """Return (status, body) of a request made inside with curl."""
        out = self.sh(f"curl -sS -o /tmp/body -w '%{{http_code}}' --max-time 30 {' '.join(curl)} {shlex.quote(url)}; "
                      f"echo; cat /tmp/body", check=False).stdout
        status, _, body = out.partition("\n")
        return int(status or 0), body

    def post_alert(self, url: str = "http://127.0.0.1:8093/webhook", *curl: str, alert: str = ALERT) -> tuple:
        return self.http(url, "-H 'Content-Type: application/json'", f"--data @{alert}", *curl)

    def metrics(self, base: str = "http://127.0.0.1:8093", *curl: str) -> Dict[str, float]:
        status, body = self.http(f"{base}/metrics", *curl)
        assert status == 200, body
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+) (\S+)$", body, re.M)}

    def received(self, hook: str) -> List[dict]:
        return json.loads(self.http(f"http://127.0.0.1:{STANDIN_CONTROL}/messages/{hook}")[1])

    def restart(self) -> None:
        self.sh("systemctl reset-failed rcwebhook 2>/dev/null; systemctl restart rcwebhook")
        assert self.prop("ActiveState") == "active"

    def wait(self, condition, timeout: float = 30, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"in {self.suite}: waited {timeout:g}s for {what}"
            time.sleep(0.2)


STANDIN_CONTROL = 9990
# A private CA as Python 3.13's strict verification wants it (keyUsage), and Rocket.Chat's certificate.
MAKE_CERTIFICATES = """
set -e
mkdir -p /root/tls && cd /root/tls
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=boot test CA' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:rocketchat.test\\nbasicConstraints=critical,CA:FALSE\\n\
keyUsage=critical,digitalSignature,keyEncipherment\\nextendedKeyUsage=serverAuth\\nsubjectKeyIdentifier=hash\\n\
authorityKeyIdentifier=keyid,issuer\\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext 2>/dev/null
# A CA made with a plain `openssl req -x509` (no keyUsage), which Python 3.13 refuses, and a leaf it signed.
openssl req -x509 -newkey rsa:2048 -nodes -keyout plain-ca.key -out plain-ca.pem -days 2 -subj '/CN=plain CA' 2>/dev/null
openssl x509 -req -in leaf.csr -CA plain-ca.pem -CAkey plain-ca.key -CAcreateserial -out plain-leaf.pem -days 2 \
    -extfile leaf.ext 2>/dev/null
"""


def _tracked_files() -> List[str]:
    return run("git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout.split("\0")


@pytest.fixture(scope="module")
def newer_deb(deb, tmp_path_factory):
    """The same package under a newer version, for the upgrade."""
    build = tmp_path_factory.mktemp("newer")
    version = re.search(r"rcwebhook_(.*)_all\.deb", deb.name).group(1)
    run("make", "--no-print-directory", "-C", str(ROOT), "deb", f"BUILD={build}", f"DEB_VERSION={version}+1")
    [package] = build.glob("rcwebhook_*_all.deb")
    return package


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the fixture's cleanup


@pytest.fixture(scope="module", params=SUITES)
def booted(request, deb, newer_deb):
    """A booted release with the packages, the source tree, certificates and the stand-in in it."""
    missing = bootmachine.missing_tools()
    if missing:
        message = f"the boot tests need: apt-get install {' '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    suite = request.param
    packages = bootmachine.PACKAGES + (bootmachine.SUITE_PACKAGES if suite == SUITE_RELEASE else [])
    machine = bootmachine.Machine(suite, packages, log=lambda text: print(f"[boot {suite}] {text}"))
    previous = {s: signal.signal(s, _interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    started = time.monotonic()
    try:
        machine.boot()
        booted = Booted(machine)
        machine.put("/root/t/rcwebhook.deb", deb.read_bytes())
        machine.put("/root/t/rcwebhook-newer.deb", newer_deb.read_bytes())
        for name in _tracked_files():
            if name and (ROOT / name).is_file():
                machine.put(f"/root/src/{name}", (ROOT / name).read_bytes(), (ROOT / name).stat().st_mode & 0o777)
        machine.sh(MAKE_CERTIFICATES)
        machine.sh("systemd-run --quiet --unit=standin -p Type=exec /usr/bin/python3 "
                   "/root/src/packaging/tests/standin_serve.py /root/tls/leaf.pem /root/tls/leaf.key /root/t/hooks.json "
                   "/root/tls/plain-leaf.pem /root/tls/leaf.key")
        try:
            booted.wait(lambda: machine.sh("test -f /root/t/hooks.json", check=False).returncode == 0, 30,
                        "the stand-in Rocket.Chat")
        except AssertionError:
            print(machine.sh("journalctl -u standin --no-pager", check=False).stdout)
            raise
        booted.hooks = json.loads(machine.sh("cat /root/t/hooks.json").stdout)
        yield booted
    finally:
        try:
            machine.shutdown()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        print(f"[boot {suite}] {time.monotonic() - started:.0f}s from boot to clean-up")


# --- the test suite on Debian 13's Python -------------------------------------------------------

def test_suite_on_debian_13s_python(booted):
    # First, before the package puts a system configuration in place (two tests would skip then).
    if booted.suite != SUITE_RELEASE:
        pytest.skip(f"the test suite runs in {SUITE_RELEASE} only, on its Python")
    started = time.monotonic()
    # Left out here, run on the host in CI: the status page's browser test (chromium), the template
    # differential test (amtool 0.25 beside 0.28) and the hook sets' end-to-end test (Alertmanager 0.25
    # beside 0.28) need programs this root lacks; the stderr fallback of
    # the journal formatting is not taken where journald runs (the checks below test the journal
    # itself); and an unprivileged user cannot read the sources under /root.
    result = booted.sh("cd /root/src && python3 --version && CI=true make test PYTHON=/usr/bin/python3 "
                       "PYTEST_ARGS='-q -rs -p no:cacheprovider --ignore=tests/web/test_status_browser.py "
                       "--ignore=tests/amtemplate/test_amtool_differential.py --ignore=tests/test_receivers_e2e.py "
                       "--deselect=tests/test_cli.py::test_under_journald_lines_carry_priorities_and_no_timestamps "
                       "--deselect=tests/test_cli.py::test_check_config_on_a_file_it_may_not_read_explains_sudo' "
                       "2>&1", check=False, timeout=3600)  # a guard against hangs: the run takes 7-11 min
    print(result.stdout[-4000:])
    print(f"[boot {booted.suite}] make test took {time.monotonic() - started:.0f}s")
    # A failure's head (its name and the assertion) first, then the end of the run: the end alone was
    # mostly a failing test's captured log, with the violation that failed it cut away.
    failures = result.stdout.find("= FAILURES =")
    head = result.stdout[failures:failures + 6000] + "\n...\n" if failures >= 0 else ""
    assert result.returncode == 0, head + result.stdout[-3000:]


# --- install --------------------------------------------------------------------------------------

def test_fresh_install_leaves_no_failed_unit_and_says_what_to_configure(booted):
    since = booted.mark()
    result = booted.sh("cd /root/t && apt-get install -y ./rcwebhook.deb 2>&1", check=False)
    output = result.stdout
    assert result.returncode == 0, output
    assert "rcwebhook is not configured yet, so it is neither enabled nor started" in output, output
    assert "ROCKETCHAT_WEBHOOK_WARNING" in output and ENV in output and "systemctl enable --now rcwebhook" in output
    assert "Job for rcwebhook.service failed" not in output and "Could not execute systemctl" not in output, output
    assert booted.sh("systemctl is-enabled rcwebhook", check=False).stdout.strip() == "disabled"
    assert (booted.prop("ActiveState"), booted.prop("Result")) == ("inactive", "success")
    assert booted.sh("systemctl --failed --no-legend --plain").stdout.strip() == ""
    assert booted.sh("systemctl is-system-running", check=False).stdout.strip() == "running"
    assert not [e for e in booted.journal(since) if e.priority <= 4], booted.journal(since)
    assert booted.sh(f"stat -c '%U:%G %a' {ENV}").stdout.strip() == "root:rcwebhook 640"
    assert booted.sh("id -u rcwebhook").returncode == 0
    booted.install_output = output


def test_configuration_error_at_start_is_found_by_journalctl_p_err(booted):
    booted.configure(**booted.good_config(PORT="many"))
    since = booted.mark()
    assert booted.sh("systemctl start rcwebhook", check=False).returncode != 0
    assert (booted.prop("ActiveState"), booted.prop("ExecMainStatus")) == ("failed", "78")
    # journald reads the daemon's output stream on its own time: wait until the error is in.
    booted.journal_until(since, lambda entries: any("PORT='many'" in e.message for e in entries),
                         "the error in the journal")
    errors = booted.sh("journalctl -b -u rcwebhook -p err -o cat --no-pager").stdout
    assert re.search(r"^rcwebhook: error: /etc/rcwebhook/rcwebhook\.env:\d+: PORT='many' is not a whole number$",
                     errors, re.M), errors
    mine = [e for e in booted.journal(since) if e.identifier == "rcwebhook"]
    assert mine and all(e.priority == 3 for e in mine), mine
    time.sleep(float(booted.prop("RestartUSec").rstrip("s") or 0) + 1)  # not restarted: exit 78 cannot be fixed so
    assert booted.prop("NRestarts") == "0" and booted.prop("ActiveState") == "failed"
    booted.sh("systemctl reset-failed rcwebhook")


# --- running --------------------------------------------------------------------------------------

def test_enable_now_as_told_is_active_once_the_daemon_sent_ready(booted):
    booted.configure(**booted.good_config())
    since = booted.mark()
    booted.sh("systemctl enable --now rcwebhook")
    assert booted.sh("systemctl is-enabled rcwebhook").stdout.strip() == "enabled"
    assert (booted.prop("ActiveState"), booted.prop("SubState")) == ("active", "running")
    assert booted.prop("StatusText") == "Serving on http://127.0.0.1:8093"  # sent with READY=1
    messages = [e.message for e in booted.journal(since)]
    listening = next(i for i, m in enumerate(messages) if "listening on http://127.0.0.1:8093" in m)
    started = next(i for i, m in enumerate(messages) if re.match(r"Started .*rcwebhook", m))
    assert listening < started, messages


def test_health_delivery_and_every_process_metric(booted):
    status, body = booted.http("http://127.0.0.1:8093/health")
    assert status == 200 and json.loads(body)["status"] == "healthy"
    status, body = booted.post_alert()
    assert status == 200, body
    routes = json.loads(body)["routes"]
    assert routes["critical"]["status"] == routes["warning"]["status"] == "delivered", body
    [critical], [warning] = booted.received("critical"), booted.received("warning")
    assert critical["text"].startswith(":rotating_light: [FIRING:1] [HighCPUUsage](http://localhost:9093/#/alerts?")
    assert critical["text"].endswith(") instance=server1:9100 job=node — CPU usage above 90% on server1")
    assert warning["text"].startswith(":warning: [FIRING:1] [HighMemoryUsage](http://localhost:9093/#/alerts?")
    metrics = booted.metrics()
    assert [name for name in PROCESS_METRICS if name not in metrics] == []
    # The start time the kernel keeps, read from outside the sandbox (ProcSubset=pid hides /proc/stat inside).
    pid = booted.prop("MainPID")
    kernel = float(booted.sh(
        "python3 -c 'import os, time; s = open(\"/proc/%s/stat\").read(); t = int(s[s.rindex(\")\") + 2:].split()[19]); "
        "print(time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + t / os.sysconf(\"SC_CLK_TCK\"))'" % pid).stdout)
    assert abs(metrics["process_start_time_seconds"] - kernel) < 0.05, (metrics["process_start_time_seconds"], kernel)


def alert(name: str, severity: str) -> bytes:
    """Return a notification of one new firing alert (one no earlier check posted)."""
    return json.dumps({
        "version": "4", "groupKey": f"{{}}:{{alertname=\"{name}\"}}", "status": "firing", "receiver": "rc",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://localhost:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": severity},
                    "annotations": {}, "startsAt": "2026-01-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": hashlib.sha256(name.encode()).hexdigest()[:16]}]}).encode()


def test_journal_priorities_of_errors_and_warnings(booted):
    booted.machine.put("/root/t/info-alert.json", alert("DiskAlmostFull", "info"))
    booted.configure(**booted.good_config(ROCKETCHAT_WEBHOOK_INFO=booted.hooks["wrong-token"], SEVERITY_FIELD="x"))
    since = booted.mark()
    booted.restart()
    status, body = booted.post_alert(alert="/root/t/info-alert.json")
    assert status == 502, body
    refusal = "Rocket.Chat refused the post for route info"
    mine = [e for e in booted.journal_until(since, lambda entries: any(e.message.startswith(refusal) for e in entries),
                                            "the refusal's journal entry") if e.identifier == "rcwebhook"]
    warning = [e for e in mine if "unknown key SEVERITY_FIELD, did you mean SEVERITY_LABEL?" in e.message]
    refused = [e for e in mine if e.message.startswith(refusal)]
    listening = [e for e in mine if "listening on" in e.message]
    assert warning and warning[0].priority == 4, mine
    assert refused and refused[0].priority == 3, mine
    assert listening and listening[0].priority == 6, mine
    assert not [e for e in mine if re.match(r"<\d>", e.message)], mine
    errors = booted.sh("journalctl -b -u rcwebhook -p err -o cat --no-pager").stdout
    assert refusal in errors
    # The fields of the native journal protocol: one route's history, one kind of event.
    route = booted.sh("journalctl -b -u rcwebhook RCWEBHOOK_ROUTE=info -o cat --no-pager").stdout
    assert refusal in route, route
    assert "route warning" not in route, route
    refusals = booted.sh("journalctl -b -u rcwebhook RCWEBHOOK_OUTCOME=refused -o json --no-pager").stdout
    assert refusals and all(json.loads(line).get("RCWEBHOOK_HOOK", "").endswith("/***")
                            for line in refusals.splitlines()), refusals


def test_reload_is_synchronous(booted):
    booted.configure(**booted.good_config(DEDUP_WINDOW="0"))
    booted.restart()
    pid = booted.prop("MainPID")
    for attempt, hook in enumerate(("second", "warning", "second"), 1):
        booted.configure(**booted.good_config(ROCKETCHAT_WEBHOOK_WARNING=booted.hooks[hook], DEDUP_WINDOW="0"))
        before = booted.metrics()["rcwebhook_config_last_reload_success_timestamp_seconds"]
        count = len(booted.received(hook))
        booted.sh("systemctl reload rcwebhook")
        # No wait: the reload is done when systemctl returns, and the next post goes to the new URL.
        assert booted.metrics()["rcwebhook_config_last_reload_success_timestamp_seconds"] > before, attempt
        # A new alert each time: what is tested is where the next post goes, not what counts as a repeat.
        booted.machine.put(f"/root/t/reload-{attempt}.json", alert(f"Reloaded{attempt}", "warning"))
        status, body = booted.post_alert(alert=f"/root/t/reload-{attempt}.json")
        assert status == 200, body
        assert len(booted.received(hook)) == count + 1, (attempt, hook, body)
    assert booted.prop("MainPID") == pid and booted.prop("ActiveState") == "active"


def test_refused_reload_fails_and_keeps_the_running_configuration(booted):
    booted.configure(**booted.good_config())
    booted.restart()
    pid = booted.prop("MainPID")
    booted.sh(f"printf 'THIS LINE IS BROKEN\\nAPI_KEY=a-key-from-the-broken-file\\n' >> {ENV}")
    since = booted.mark()
    result = booted.sh("systemctl reload rcwebhook 2>&1", check=False)
    assert result.returncode != 0, result.stdout
    assert (booted.prop("ActiveState"), booted.prop("SubState"), booted.prop("MainPID")) == ("active", "running", pid)
    assert booted.post_alert()[0] == 200  # the running configuration has no API key
    assert booted.metrics()["rcwebhook_config_last_reload_successful"] == 0
    refusal = "the new configuration was refused; the daemon runs on with the previous one"
    entries = booted.journal_until(since, lambda entries: any(refusal in e.message for e in entries),
                                   "the refused reload's journal entries")
    errors = [e.message for e in entries if e.priority <= 3]
    assert any("Reload refused: the configuration is invalid" in m for m in errors), errors
    assert any(refusal in m for m in errors), errors
    booted.configure(**booted.good_config())
    booted.sh("systemctl reload rcwebhook")
    assert booted.metrics()["rcwebhook_config_last_reload_successful"] == 1


def test_watchdog_restarts_a_stopped_daemon(booted):
    # 6 s: the daemon pings every half of it, so a running daemon is 3 s of stall away from a restart that
    # would make the PID and the count read below stale.
    booted.dropin("50-watchdog", "WatchdogSec=6s")
    try:
        booted.restart()
        pid, restarts = booted.prop("MainPID"), int(booted.prop("NRestarts"))
        assert pid != "0"  # `kill -STOP 0` would stop this shell
        since = booted.mark()
        booted.sh(f"kill -STOP {pid}")
        booted.wait(lambda: booted.prop("MainPID") not in (pid, "0") and booted.prop("SubState") == "running", 60,
                    "the restart after the watchdog timeout")
        assert int(booted.prop("NRestarts")) == restarts + 1
        messages = [e.message for e in booted.journal(since)]
        assert any("Watchdog timeout" in m for m in messages), messages
    finally:
        booted.remove_dropin("50-watchdog")


def test_no_seccomp_violation_across_every_feature(booted):
    booted.dropin("60-seccomp-kills", "SystemCallErrorNumber=kill")
    try:
        assert booted.prop("SystemCallErrorNumber") == "2147483646"  # a filtered call kills (SIGSYS)
        booted.sh("install -d -m 0750 -g rcwebhook /etc/rcwebhook/tls && "
                  "install -m 0640 -g rcwebhook /root/tls/leaf.pem /root/tls/leaf.key /root/tls/ca.pem /etc/rcwebhook/tls/")
        booted.configure(**booted.good_config(
            ROCKETCHAT_WEBHOOK_WARNING=booted.hooks["tls"], ROCKETCHAT_CA_FILE="/etc/rcwebhook/tls/ca.pem",
            TLS_CERT_FILE="/etc/rcwebhook/tls/leaf.pem", TLS_KEY_FILE="/etc/rcwebhook/tls/leaf.key",
            LOG_FILE="/var/log/rcwebhook/rcwebhook.log", LOG_MAX_BYTES="1000", LOG_BACKUP_COUNT="2", DEDUP_WINDOW="0"))
        assert "warning:" not in booted.sh("rcwebhook --check-config 2>&1").stdout  # this CA passes strict checks
        since = booted.mark()
        booted.restart()
        https = ("https://127.0.0.1:8093", "--cacert /root/tls/ca.pem")
        assert booted.http(f"{https[0]}/health", https[1])[0] == 200
        for _ in range(3):
            status, body = booted.post_alert(f"{https[0]}/webhook", https[1])
            assert status == 200 and json.loads(body)["routes"]["warning"]["status"] == "delivered", body
        assert len(booted.received("tls")) == 3
        assert "process_threads" in booted.metrics(*https)
        booted.sh("systemctl reload rcwebhook")
        # LOG_MAX_BYTES=1000 is passed well before this; the file is written by the daemon's log thread.
        booted.wait(lambda: "rcwebhook.log.1" in booted.sh("ls /var/log/rcwebhook").stdout.split(), 30,
                    "the log file rotated")
        booted.sh("systemctl stop rcwebhook")
        assert (booted.prop("Result"), booted.prop("ExecMainStatus")) == ("success", "0")
        found = [e.message for e in booted.journal(since, unit=False) if VIOLATIONS.search(e.message)]
        assert found == []
    finally:
        booted.remove_dropin("60-seccomp-kills")


def test_a_ca_without_key_usage_is_warned_about_and_named_with_its_fix(booted):
    booted.configure(**booted.good_config(ROCKETCHAT_WEBHOOK_WARNING=booted.hooks["plain-ca"],
                                          ROCKETCHAT_CA_FILE="/root/tls/plain-ca.pem"))
    checked = booted.sh("rcwebhook --check-config 2>&1").stdout
    assert re.search(r"^rcwebhook: warning: /etc/rcwebhook/rcwebhook\.env:\d+: "
                     r"ROCKETCHAT_CA_FILE=/root/tls/plain-ca\.pem: the CA certificate 'plain CA'", checked, re.M), checked
    assert "CA cert does not include key usage extension" in checked  # on every Python
    strict = booted.sh("python3 -c 'import sys; print(sys.version_info >= (3, 13))'").stdout.strip() == "True"
    sent = booted.sh("rcwebhook --send-test warning 2>&1", check=False)
    if strict:
        assert sent.returncode == 1, sent.stdout
        assert ("Rocket.Chat's TLS certificate is not trusted (CA cert does not include key usage extension): "
                "the CA certificate lacks the keyUsage extension") in sent.stdout
        assert "-addext 'keyUsage=critical,keyCertSign,cRLSign'" in sent.stdout
    else:  # an older Python accepts this CA: the warning is all there is
        assert sent.returncode == 0 and "warning: delivered (200)" in sent.stdout, sent.stdout


def test_kill_9_restarts_it(booted):
    booted.configure(**booted.good_config())
    booted.restart()
    pid, restarts = booted.prop("MainPID"), int(booted.prop("NRestarts"))
    booted.sh(f"kill -9 {pid}")
    booted.wait(lambda: booted.prop("MainPID") not in (pid, "0") and booted.prop("SubState") == "running", 30,
                "the restart after kill -9")
    assert int(booted.prop("NRestarts")) == restarts + 1
    assert booted.http("http://127.0.0.1:8093/health")[0] == 200


def test_secrets_from_load_credential(booted):
    booted.sh("(umask 077; printf 'a-credential-key\\n' > /etc/rcwebhook/api-key)")
    booted.dropin("70-credential", "LoadCredential=API_KEY:/etc/rcwebhook/api-key")
    try:
        booted.configure(**booted.good_config(DEDUP_WINDOW="0"))
        booted.restart()
        assert booted.post_alert()[0] == 401
        assert booted.post_alert("http://127.0.0.1:8093/webhook", "-H 'X-API-Key: wrong'")[0] == 401
        assert booted.post_alert("http://127.0.0.1:8093/webhook", "-H 'X-API-Key: a-credential-key'")[0] == 200
        # ExecReload= runs beside the daemon, in the sandbox, with the credentials in place.
        booted.sh("systemctl reload rcwebhook")
        assert booted.post_alert("http://127.0.0.1:8093/webhook", "-H 'X-API-Key: a-credential-key'")[0] == 200
    finally:
        booted.remove_dropin("70-credential")
    booted.restart()


def test_stop_lets_a_request_in_flight_finish_beyond_timeout_stop_sec(booted):
    # The daemon tells systemd how long its drain may take once its serving loop has ended, up to a second
    # after SIGTERM: 5 s leaves room for a slow machine and is still shorter than the request's 8 s.
    booted.dropin("80-short-stop-timeout", "TimeoutStopSec=5s")
    try:
        # Rocket.Chat unreachable: the request waits for DELIVERY_DEADLINE (8 s), then is answered 503.
        booted.configure(**booted.good_config(ROCKETCHAT_WEBHOOK_WARNING="http://127.0.0.1:9/hooks/down/token",
                                              ROCKETCHAT_WEBHOOK_CRITICAL="", DELIVERY_DEADLINE="8"))
        booted.restart()
        booted.machine.put("/root/t/stop-alert.json", alert("StopTest", "warning"))
        out = booted.sh(
            "(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' "
            "--data @/root/t/stop-alert.json http://127.0.0.1:8093/webhook > /tmp/in-flight) &\n"
            # The stop comes once the daemon is handling the request (a connection whose request has not
            # arrived yet is closed at the stop), as its log line tells, within 10 s.
            "pid=$(systemctl show -p MainPID --value rcwebhook)\n"
            "for i in $(seq 100); do journalctl -q --no-pager _PID=$pid | grep -q 'Notification received' && break;"
            " sleep 0.1; done\n"
            "start=$(date +%s.%N); systemctl stop rcwebhook; end=$(date +%s.%N); wait\n"
            "echo \"$(cat /tmp/in-flight) $(python3 -c \"print($end - $start)\")\"", timeout=60).stdout.split()
        status, took = int(out[0]), float(out[1])
        assert status == 503  # answered, not cut off
        assert 5 < took < 20, took
        assert (booted.prop("Result"), booted.prop("ExecMainStatus")) == ("success", "0")
    finally:
        booted.remove_dropin("80-short-stop-timeout")
    booted.configure(**booted.good_config())
    booted.restart()
    took = float(booted.sh("s=$(date +%s.%N); systemctl stop rcwebhook; python3 -c \"print($(date +%s.%N) - $s)\"").stdout)
    # Nothing in flight: no drain (up to DELIVERY_DEADLINE + 5 s) and no TimeoutStopSec= wait; the serving
    # loop sees the stop within its 0.5 s poll.
    assert took < 10, took
    assert (booted.prop("Result"), booted.prop("ExecMainStatus")) == ("success", "0")


def test_exposure_under_this_systemd(booted):
    out = booted.sh("systemd-analyze security rcwebhook --no-pager 2>&1 | tail -n 1").stdout
    score = float(re.search(r"rcwebhook.service: ([\d.]+)", out).group(1))
    print(f"[boot {booted.suite}] exposure {score}")
    assert score <= 1.2


def test_upgrade_restarts_the_running_service(booted):
    booted.configure(**booted.good_config())
    booted.restart()
    pid = booted.prop("MainPID")
    result = booted.sh("cd /root/t && apt-get install -y ./rcwebhook-newer.deb 2>&1", check=False)
    assert result.returncode == 0, result.stdout
    assert "not configured yet" not in result.stdout
    assert booted.sh("dpkg-query -W -f '${Version}' rcwebhook").stdout.endswith("+1")
    assert (booted.prop("ActiveState"), booted.prop("SubState")) == ("active", "running")
    assert booted.prop("MainPID") != pid
    assert booted.http("http://127.0.0.1:8093/health")[0] == 200


def test_purge_leaves_nothing_of_the_package(booted):
    booted.sh(f"mkdir -p {DROPINS} && printf '[Service]\\nEnvironment=X=1\\n' > {DROPINS}/90-admin.conf")
    booted.sh("systemctl daemon-reload; systemctl restart rcwebhook")
    assert booted.sh("test -f /var/lib/rcwebhook/state.sqlite3 && test -d /run/rcwebhook", check=False).returncode == 0
    result = booted.sh("apt-get purge -y rcwebhook 2>&1", check=False)
    assert result.returncode == 0, result.stdout
    left = booted.sh("for p in /etc/rcwebhook /var/lib/rcwebhook /var/log/rcwebhook /run/rcwebhook "
                     "/lib/systemd/system/rcwebhook.service /usr/libexec/rcwebhook /usr/share/rcwebhook "
                     "/etc/systemd/system/multi-user.target.wants/rcwebhook.service; do "
                     "[ -e $p ] && echo $p; done; true").stdout.split()
    assert left == []
    # The administrator's drop-in is theirs: purge leaves it (and the test removes it).
    assert booted.sh(f"cat {DROPINS}/90-admin.conf").stdout == "[Service]\nEnvironment=X=1\n"
    booted.sh(f"rm -rf {DROPINS} && systemctl daemon-reload")
    assert booted.prop("LoadState") == "not-found"
    assert booted.sh("pgrep -u rcwebhook || true").stdout.strip() == ""
    assert booted.sh("dpkg-query -W -f '${db:Status-Status}' rcwebhook 2>/dev/null || true").stdout in ("", "not-installed")
    assert booted.sh("systemctl --failed --no-legend --plain").stdout.strip() == ""
