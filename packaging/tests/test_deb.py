"""The .deb as users receive it: lintian, the unit's sandbox, reproducibility, install, run, reload,
upgrade and purge."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from debtools import ROOT, run
from tests.conftest import EXAMPLE_ALERT
from tests.rocketchat_standin import RocketChatStandin

UNIT = ROOT / "packaging" / "systemd" / "rcwebhook.service"
CONFIG = Path("/etc/rcwebhook/rcwebhook.env")
APT = ("apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold")


def version() -> str:
    return re.search(r'__version__ = "(.*)"', (ROOT / "rcwebhook" / "__init__.py").read_text()).group(1)


def test_lintian_is_clean(deb):
    result = run("lintian", "--fail-on", "error,warning", "--display-info", str(deb), check=False)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"^[EW]: ", result.stdout, re.M), result.stdout
    for overrides in (ROOT / "packaging" / "debian").glob("*lintian-overrides"):
        lines = overrides.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                assert i > 0 and lines[i - 1].startswith("#"), f"{overrides.name}: override without a reason: {line}"


def test_unit_exposure_is_at_most_1_2():
    result = run("systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT))
    score = float(re.search(r"Overall exposure level for rcwebhook.service: ([\d.]+)", result.stdout).group(1))
    print(f"exposure {score}")
    assert score <= 1.2


def test_unit_settings():
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/usr/libexec/rcwebhook/unit-helper reload $MAINPID", "RuntimeDirectory=rcwebhook",
                 "Restart=on-failure", "RestartPreventExitStatus=78", "User=rcwebhook", "MemoryDenyWriteExecute=yes"):
        assert f"\n{line}\n" in text
    assert re.search(r"^WatchdogSec=\d+$", text, re.M)


def test_every_documentation_file_of_the_unit_is_shipped(deb):
    shipped = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", str(deb)).stdout.splitlines()}
    documentation = re.search(r"^Documentation=(.*)$", UNIT.read_text(), re.M).group(1).split()
    for target in documentation:
        assert re.match(r"(man:[a-z-]+\(\d\)|file://|https?://)", target), target
        if target.startswith("file://"):
            assert target[len("file://"):] in shipped, f"{target} is not in the package"
        if target.startswith("man:"):
            name, section = re.match(r"man:(.*)\((\d)\)", target).groups()
            assert f"/usr/share/man/man{section}/{name}.{section}.gz" in shipped, target


def test_the_package_ships_every_module_of_the_source_tree(deb):
    shipped = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", str(deb)).stdout.splitlines()}
    installed = {path[len("/usr/share/rcwebhook/"):] for path in shipped
                 if path.startswith("/usr/share/rcwebhook/rcwebhook/") and path.endswith(".py")}
    source = {str(path.relative_to(ROOT)) for path in (ROOT / "rcwebhook").rglob("*.py")
              if "__pycache__" not in path.parts}
    assert any("/" in module[len("rcwebhook/"):] for module in source), "the tree has subpackages to check"
    assert installed == source, f"missing from the .deb: {sorted(source - installed)}; " \
                                f"not in the tree: {sorted(installed - source)}"


def test_the_installed_readme_links_only_to_what_the_package_ships(deb):
    shipped = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", str(deb)).stdout.splitlines()}
    readme = "/usr/share/doc/rcwebhook/README.md"
    assert readme in shipped
    targets = {t.partition("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
               if not re.match(r"[a-z]+:", t)} - {""}
    assert "docs/status-page.png" in targets and "docs/configuration.md" in targets
    missing = sorted(t for t in targets if f"/usr/share/doc/rcwebhook/{t}" not in shipped)
    assert not missing, f"the installed README links to files the package does not ship: {missing}"


def test_builds_are_reproducible(deb, tmp_path):
    run("make", "--no-print-directory", "-C", str(ROOT), "deb", f"BUILD={tmp_path}")
    again = tmp_path / deb.name
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(deb.read_bytes()).hexdigest()


def test_build_leaves_the_tree_clean(deb):
    status = run("git", "-C", str(ROOT), "status", "--porcelain", "--ignored", "--", "packaging", "rcwebhook",
                 "examples").stdout
    assert "packaging/debian/" not in status.replace("packaging/debian/.", "")
    assert not [line for line in status.splitlines() if "debian/rcwebhook" in line or ".debhelper" in line]


def test_package_metadata(deb):
    fields = run("dpkg-deb", "-f", str(deb)).stdout
    assert f"Version: {version()}" in fields
    assert "Architecture: all" in fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    assert "python3 (>= 3.9)" in depends
    assert "tzdata" in depends  # zoneinfo's database, for TIMEZONE
    assert not re.search(r"python3-(?!:)", depends), depends  # the standard library only
    print(fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def purge() -> None:
    run(*APT, "purge", "rcwebhook", check=False)


@pytest.fixture
def clean_system():
    purge()
    yield
    purge()


def installed_size_kib() -> int:
    return int(run("dpkg-query", "-W", "-f", "${Installed-Size}", "rcwebhook").stdout)


class Installed:
    """The installed /usr/bin/rcwebhook, run as the rcwebhook user like the unit runs it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=rcwebhook", "--regid=rcwebhook", "--init-groups", "/usr/bin/rcwebhook"],
            stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"})
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip())
                self.cond.notify_all()

    def wait_for(self, text: str, after: int = 0, timeout: float = 10) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: any(text in l for l in self.lines[after:]), timeout):
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def post_example(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=EXAMPLE_ALERT.read_bytes(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status


def test_install_run_reload_and_purge(deb, clean_system):
    installed = run(*APT, "install", str(deb))
    # Nothing is configured yet: the administrator is told what to set (the unit is neither enabled nor started).
    assert "rcwebhook is not configured yet, so it is neither enabled nor started" in installed.stdout + installed.stderr
    assert not Path("/etc/systemd/system/multi-user.target.wants/rcwebhook.service").exists()
    assert "ROCKETCHAT_WEBHOOK_WARNING" in installed.stdout + installed.stderr
    print(f"installed size: {installed_size_kib()} KiB")

    # Files, owners, modes.
    user = pwd.getpwnam("rcwebhook")
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false") and user.pw_dir == "/nonexistent"
    assert not Path("/nonexistent").exists()
    config = CONFIG.stat()
    assert (config.st_uid, grp.getgrgid(config.st_gid).gr_name, stat.S_IMODE(config.st_mode)) == (0, "rcwebhook", 0o640)
    assert stat.S_IMODE(Path("/usr/bin/rcwebhook").stat().st_mode) == 0o755
    assert stat.S_IMODE(Path("/usr/libexec/rcwebhook/unit-helper").stat().st_mode) == 0o755
    assert Path("/usr/share/rcwebhook/rcwebhook/cli.py").is_file()
    assert not list(Path("/usr/lib/python3/dist-packages").glob("rcwebhook*"))  # private, not a public module
    assert Path("/lib/systemd/system/rcwebhook.service").read_text() == UNIT.read_text()
    for doc in ("copyright", "changelog.gz", "README.md", "docs/configuration.md", "examples/alerting-rules.yml",
                "examples/alertmanager.yml", "examples/rcwebhook.env"):
        assert Path("/usr/share/doc/rcwebhook", doc).exists(), doc
    assert "/etc/rcwebhook/rcwebhook.env" in run("dpkg-query", "-W", "-f", "${Conffiles}", "rcwebhook").stdout
    verify = run("systemd-analyze", "verify", "/lib/systemd/system/rcwebhook.service", check=False)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr

    # The man page matches --help.
    help_text = run("/usr/bin/rcwebhook", "--help").stdout
    man = run("man", "-P", "cat", "rcwebhook", env={"PATH": "/usr/bin:/bin", "MANWIDTH": "200"}).stdout
    for option in set(re.findall(r"--[a-z][a-z-]+", help_text)):
        assert option in man.replace("\u2010", "-"), option
    assert run("/usr/bin/rcwebhook", "--version").stdout.strip() == f"rcwebhook {version()}"

    # Unconfigured: exit 78 at once, saying what to set (the unit does not restart on 78).
    unconfigured = subprocess.run(["setpriv", "--reuid=rcwebhook", "--regid=rcwebhook", "--init-groups",
                                   "/usr/bin/rcwebhook"], capture_output=True, text=True, timeout=30)
    assert unconfigured.returncode == 78
    assert "set ROCKETCHAT_WEBHOOK_WARNING" in unconfigured.stderr

    with RocketChatStandin() as rocketchat:
        first, second = rocketchat.add_hook("first"), rocketchat.add_hook("second")
        port = free_port()
        base = CONFIG.read_text() + "\nSTATE_DIR=/var/lib/rcwebhook\n"
        state = Path("/var/lib/rcwebhook")  # what the unit's StateDirectory= makes
        state.mkdir(mode=0o700)
        os.chown(state, user.pw_uid, user.pw_gid)
        CONFIG.write_text(base + f"\nPORT={port}\nROCKETCHAT_WEBHOOK_WARNING={first}\n")
        daemon = Installed()
        try:
            daemon.wait_for("listening on")
            assert post_example(port) == 200
            assert sum(len(m["attachments"]) for m in rocketchat.messages("first")) == 2
            assert (state / "state.sqlite3").stat().st_uid == user.pw_uid
            CONFIG.write_text(base + f"\nPORT={port}\nROCKETCHAT_WEBHOOK_WARNING={second}\nDEDUP_WINDOW=0\n")
            mark = len(daemon.lines)
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_for("Configuration reloaded", after=mark)
            assert post_example(port) == 200
            assert sum(len(m["attachments"]) for m in rocketchat.messages("second")) == 2
        finally:
            assert daemon.stop() == 0
        assert rocketchat.token("first") not in "\n".join(daemon.lines)

    run(*APT, "purge", "rcwebhook")
    for path in ("/etc/rcwebhook", "/usr/share/rcwebhook", "/usr/bin/rcwebhook", "/usr/libexec/rcwebhook",
                 "/usr/share/doc/rcwebhook",
                 "/lib/systemd/system/rcwebhook.service", "/var/log/rcwebhook", "/var/lib/rcwebhook"):
        assert not Path(path).exists(), path
    assert pwd.getpwnam("rcwebhook")  # the system user stays
    assert run("dpkg-query", "-W", "rcwebhook", check=False).returncode != 0 or \
        "not-installed" in run("dpkg-query", "-W", "-f", "${db:Status-Status}", "rcwebhook", check=False).stdout


def test_statoverride_of_the_config_wins(deb, clean_system):
    run("dpkg-statoverride", "--remove", str(CONFIG), check=False)
    try:
        run("dpkg-statoverride", "--add", "root", "root", "0600", str(CONFIG))
        run(*APT, "install", str(deb))
        config = CONFIG.stat()
        assert (config.st_uid, config.st_gid, stat.S_IMODE(config.st_mode)) == (0, 0, 0o600)
    finally:
        run("dpkg-statoverride", "--remove", str(CONFIG), check=False)


DROPINS = Path("/etc/systemd/system/rcwebhook.service.d")


def test_purge_leaves_the_administrators_drop_ins_and_statoverride(deb, clean_system):
    dropin = DROPINS / "90-admin.conf"
    made_dir = not DROPINS.exists()
    run("dpkg-statoverride", "--remove", str(CONFIG), check=False)
    try:
        run(*APT, "install", str(deb))
        DROPINS.mkdir(exist_ok=True)
        dropin.write_text("[Service]\nEnvironment=RCWEBHOOK_ADMIN=1\n")
        run("dpkg-statoverride", "--add", "root", "root", "0600", str(CONFIG))
        run(*APT, "purge", "rcwebhook")
        assert not Path("/etc/rcwebhook").exists() and not Path("/var/lib/rcwebhook").exists()
        assert dropin.read_text() == "[Service]\nEnvironment=RCWEBHOOK_ADMIN=1\n"
        assert run("dpkg-statoverride", "--list", str(CONFIG), check=False).stdout.split() == \
            ["root", "root", "600", str(CONFIG)]
    finally:
        run("dpkg-statoverride", "--remove", str(CONFIG), check=False)
        dropin.unlink(missing_ok=True)
        if made_dir and DROPINS.exists():
            DROPINS.rmdir()


def test_upgrade_keeps_the_edited_conffile_user_and_files(deb, clean_system, tmp_path):
    run(*APT, "install", str(deb))
    edited = CONFIG.read_text() + "\n# edited by the admin\nROCKETCHAT_WEBHOOK_WARNING=https://rc.example.com/hooks/a/b\n"
    CONFIG.write_text(edited)
    uid = pwd.getpwnam("rcwebhook").pw_uid
    newer = f"{version()}+1"
    run("make", "--no-print-directory", "-C", str(ROOT), "deb", f"BUILD={tmp_path}", f"DEB_VERSION={newer}")
    run(*APT, "install", str(tmp_path / f"rcwebhook_{newer}_all.deb"))
    assert run("dpkg-query", "-W", "-f", "${Version}", "rcwebhook").stdout == newer
    assert CONFIG.read_text() == edited
    config = CONFIG.stat()
    assert (config.st_uid, grp.getgrgid(config.st_gid).gr_name, stat.S_IMODE(config.st_mode)) == (0, "rcwebhook", 0o640)
    assert pwd.getpwnam("rcwebhook").pw_uid == uid
    assert Path("/usr/share/rcwebhook/rcwebhook/cli.py").is_file()
    assert run("/usr/bin/rcwebhook", "--check-config").returncode == 0
