"""A Debian release booted with its own systemd as PID 1, for the boot tests (test_boot.py).

The root file system is built once per release with mmdebstrap from the Debian mirrors this
machine's apt uses, and cached. Each boot runs systemd-nspawn on an overlay of that cache (its
writable layer on a tmpfs, so the cache stays clean) with a private network: the container has
only its own loopback. Commands run inside with nsenter.

Everything a boot creates lives under one run directory per release: the tmpfs and overlay mounts,
the nspawn pid file, and the cgroups nspawn runs in (only when this machine's PID 1 is not systemd,
which would otherwise give nspawn a scope). `cleanup()` removes all of it: it runs before each boot
(for whatever an interrupted run left), after each, and from the command line:

    python3 packaging/tests/bootmachine.py --cleanup

Nothing else on the host is changed: no sysctl, no device node, no network interface.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

CACHE = Path(os.environ.get("RCWEBHOOK_BOOT_CACHE", "/var/cache/rcwebhook-boot-test"))
RUNS = Path(os.environ.get("RCWEBHOOK_BOOT_RUNS", "/run/rcwebhook-boot-test"))
CGROUP_NAME = "rcwebhook-boot-machines"
# What every root has: systemd to boot, what the package depends on, and the tools the checks use.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "python3", "adduser", "ca-certificates", "openssl", "curl",
            "procps", "iproute2", "man-db"]
# The test suite runs in the newest release's root, on its Python.
SUITE_PACKAGES = ["make", "python3-pytest", "prometheus-alertmanager", "prometheus"]
ROOT_FORMAT = "2"  # change to rebuild every cached root
# Services the root's packages enable that the checks do not want running (nor failing) at boot.
DISABLE_HOOK = 'rm -f "$1"/etc/systemd/system/multi-user.target.wants/prometheus*.service'
HOST_TOOLS = {"mmdebstrap": "mmdebstrap", "systemd-nspawn": "systemd-container", "nsenter": "util-linux",
              "findmnt": "util-linux"}


class BootError(Exception):
    """The machine could not be built or booted."""


def missing_tools() -> List[str]:
    """Return the Debian packages that would bring the host tools the boot tests need."""
    return sorted({package for tool, package in HOST_TOOLS.items() if shutil.which(tool) is None})


# --- the root file system -----------------------------------------------------------------------

def _host_codename() -> str:
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else "bookworm"


def apt_sources(suite: str) -> List[str]:
    """Return one-line `deb` entries for `suite` from the Debian mirrors in this machine's apt sources."""
    host = _host_codename()
    entries: List[str] = []
    lists = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for path in lists:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: Dict[str, List[str]] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
                if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"])[0].lower() == "no":
                    continue
                for uri in fields.get("uris", []):
                    for release in fields.get("suites", []):
                        entries.append((uri, release, fields.get("components", ["main"])))
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], words[2], words[3:] or ["main"]))
    out: List[str] = []
    for uri, release, components in entries:
        if not re.search(r"/debian(-security)?/?$", uri) or not release.startswith(host):
            continue
        line = f"deb {uri} {suite}{release[len(host):]} {' '.join(components)}"
        if line not in out:
            out.append(line)
    return out or [f"deb http://deb.debian.org/debian {suite} main"]


def root_for(suite: str, packages: List[str], log) -> Path:
    """Return the cached root of `suite` with `packages`, building it first when there is none."""
    sources = apt_sources(suite)
    key = hashlib.sha256("\n".join([ROOT_FORMAT, DISABLE_HOOK, suite, *packages, *sources]).encode()).hexdigest()[:12]
    root = CACHE / f"{suite}-{key}"
    if (root / ".complete").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{suite}-*"):  # other package lists or mirrors of this release
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    partial = Path(f"{root}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"building the {suite} root with mmdebstrap from {', '.join(sources)}")
    started = time.monotonic()
    for attempt in (1, 2):  # a new machine downloads every root: one failed fetch must not fail a release's tests
        result = subprocess.run(["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}",
                                 '--aptopt=Acquire::Retries "3"', f"--customize-hook={DISABLE_HOOK}", suite,
                                 str(partial), *sources], capture_output=True, text=True, timeout=1200)
        if result.returncode == 0:
            break
        shutil.rmtree(partial, ignore_errors=True)
        log(f"mmdebstrap {suite} failed (attempt {attempt}): {result.stderr.strip()[-300:]}")
    else:
        raise BootError(f"mmdebstrap {suite} failed twice:\n{result.stderr[-3000:]}")
    (partial / ".complete").touch()
    partial.rename(root)
    log(f"{suite} root built in {time.monotonic() - started:.0f}s")
    return root


# --- cleanup ------------------------------------------------------------------------------------

def _mounts_under(directory: Path) -> List[str]:
    result = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True)
    prefix = str(directory)
    targets = [t.replace("\\x20", " ") for t in result.stdout.split()]
    return sorted((t for t in targets if t == prefix or t.startswith(prefix + "/")), key=len, reverse=True)


def _cgroup_dirs() -> List[Path]:
    """Return the cgroups nspawn runs in when this machine's PID 1 is not systemd."""
    base = Path("/sys/fs/cgroup")
    fstype = subprocess.run(["stat", "-fc", "%T", str(base)], capture_output=True, text=True).stdout.strip()
    if fstype == "cgroup2fs":
        return [base / CGROUP_NAME]
    dirs = []
    for hierarchy in ("unified", "systemd"):
        if (base / hierarchy / "cgroup.procs").exists():
            dirs.append(base / hierarchy / CGROUP_NAME)
    return dirs


def _pid_of(run: Path) -> Optional[int]:
    """Return the pid of the nspawn this run directory started, if it still runs."""
    try:
        pid = int((run / "nspawn.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if f"--directory={run / 'root'}".encode() in cmdline else None


def _container_init(nspawn: int) -> Optional[int]:
    """Return the pid (as seen here) of the container's PID 1: systemd, a child of nspawn."""
    for task in Path(f"/proc/{nspawn}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
            except OSError:
                continue
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def cleanup(run: Path) -> None:
    """Stop the container of run directory `run` and remove its mounts, cgroups and files."""
    nspawn = _pid_of(run)
    if nspawn is not None:
        init = _container_init(nspawn)
        if init is not None:
            subprocess.run(["nsenter", "-t", str(init), "-m", "-p", "-r", "-w", "systemctl", "poweroff"],
                           capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while _alive(nspawn) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(nspawn):
            if init is not None and _alive(init):
                os.kill(init, signal.SIGKILL)  # PID 1 of its namespace: every process in it ends
            time.sleep(0.5)
            os.kill(nspawn, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _alive(nspawn) and time.monotonic() < deadline:
                time.sleep(0.1)
    for _ in range(3):
        for target in _mounts_under(run):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        if not _mounts_under(run):
            break
    for cgroup in _cgroup_dirs():
        for directory in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                reverse=True) + [cgroup]:
            try:
                directory.rmdir()
            except OSError:
                pass
    if (run / "created-nspawn-run-dir").exists():
        for directory in ("/run/systemd/nspawn/propagate", "/run/systemd/nspawn/locks", "/run/systemd/nspawn"):
            try:
                os.rmdir(directory)
            except OSError:
                pass
    if _mounts_under(run):
        raise BootError(f"mounts under {run} remain: {_mounts_under(run)}")
    shutil.rmtree(run, ignore_errors=True)
    try:
        RUNS.rmdir()
    except OSError:
        pass


def cleanup_all() -> None:
    """Remove what every run left, whatever its release."""
    for run in sorted(RUNS.glob("*")) if RUNS.is_dir() else []:
        cleanup(run)
    for cgroup in _cgroup_dirs():
        if cgroup.exists():
            try:
                cgroup.rmdir()
            except OSError:
                pass


# --- the machine --------------------------------------------------------------------------------

def _enter_cgroups_and_follow_parent(cgroups: List[Path]) -> None:
    """In the child before exec: join our cgroups; end (SIGTERM: nspawn shuts the container down)
    when the test process dies, however it dies."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Machine:
    """One booted Debian release."""

    def __init__(self, suite: str, packages: List[str], log=print) -> None:
        self.suite = suite
        self.name = f"rcwboot-{suite}"
        self.run = RUNS / suite
        self.root = self.run / "root"
        self.packages = packages
        self.log = log
        self.init: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None

    def boot(self, timeout: float = 120) -> None:
        """Build or reuse the cached root, mount the overlay, boot systemd and wait until it has booted."""
        cleanup(self.run)
        lower = root_for(self.suite, self.packages, self.log)
        self.run.mkdir(parents=True)
        if not Path("/run/systemd/nspawn").exists():
            (self.run / "created-nspawn-run-dir").touch()
        layers = self.run / "layers"
        layers.mkdir()
        self._mount("-t", "tmpfs", "-o", "mode=0755,size=3g", "tmpfs", str(layers))
        for name in ("upper", "work"):
            (layers / name).mkdir()
        self.root.mkdir()
        self._mount("-t", "overlay", "-o", f"lowerdir={lower},upperdir={layers / 'upper'},workdir={layers / 'work'}",
                    "overlay", str(self.root))
        (self.root / "etc/hostname").write_text(self.name + "\n")
        (self.root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.0.1\trocketchat.test\n"
                                             "::1\tlocalhost ip6-localhost\n")
        command = ["systemd-nspawn", "--boot", f"--directory={self.root}", f"--machine={self.name}",
                   "--private-network", "--register=no", "--console=read-only"]
        cgroups: List[Path] = []
        if not Path("/run/systemd/system").exists():
            # No systemd here to give nspawn a scope: it runs in cgroups of our own, removed by cleanup().
            command.append("--keep-unit")
            cgroups = _cgroup_dirs()
            for cgroup in cgroups:
                cgroup.mkdir(exist_ok=True)
        environ = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        with open(self.run / "nspawn.log", "wb") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                            env=environ, start_new_session=True,
                                            preexec_fn=lambda: _enter_cgroups_and_follow_parent(cgroups))
        (self.run / "nspawn.pid").write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while self.init is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BootError(f"systemd-nspawn did not start {self.suite}:\n{self.nspawn_log()}")
            self.init = _container_init(self.process.pid)
            time.sleep(0.1)
        state = ""
        while state not in ("running", "degraded"):
            if time.monotonic() > deadline:
                raise BootError(f"{self.suite} did not finish booting ({state!r}):\n{self.nspawn_log()}")
            state = self.sh("systemctl is-system-running --wait 2>/dev/null", check=False,
                            timeout=max(1.0, deadline - time.monotonic())).stdout.strip()
            if not state:
                time.sleep(0.2)  # PID 1 has not opened its private socket yet
        self.log(f"booted {self.sh('systemctl --version | head -n 1').stdout.strip()} ({self.suite}): {state}")

    def _mount(self, *args: str) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise BootError(f"mount {' '.join(args)}: {result.stderr}")

    def nspawn_log(self) -> str:
        try:
            return (self.run / "nspawn.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a bash script inside, as root in a clean environment; fail on a non-zero exit when `check`."""
        if self.init is None:
            raise BootError("not booted")
        command = ["nsenter", "-t", str(self.init), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                   "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                   "LANG=C.UTF-8", "TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "DEBIAN_FRONTEND=noninteractive",
                   "bash", "-c", "set -o pipefail\n" + script]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"in {self.suite}, exit {result.returncode}:\n{script}\n--- stdout\n{result.stdout}"
                                 f"\n--- stderr\n{result.stderr}")
        return result

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file into the machine (its overlay, from here)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    def shutdown(self) -> None:
        """Power the machine off and remove everything the boot made."""
        self.init = None
        cleanup(self.run)
        if self.process is not None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass


if __name__ == "__main__":
    if sys.argv[1:] != ["--cleanup"]:
        sys.exit(f"usage: {sys.argv[0]} --cleanup")
    cleanup_all()
