"""Differential test: rcwebhook's template engine against Alertmanager's own (amtool).

Thousands of seeded templates and data sets go through `amtool template render` and through
`rcwebhook template render` with exactly the same command line (--template.glob, --template.text,
--template.data): every valid template must render identically, every invalid one must fail in
both. Cases are batched (many `define`d templates in one glob file, one text calling them all) and
a batch that differs or fails is split in halves until each difference is one case.

amtool: Debian 12's /usr/bin/amtool (0.25) and Debian 13's 0.28.1 unpacked by
.ci/fetch-amtool-trixie (or $RCWEBHOOK_AMTOOL_028). Without them the test is skipped, except
under CI=true, where it fails. GOTEMPLATE_DIFF_CASES scales the number of valid cases per version.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from rcwebhook import cli
from tests.gotemplate import corpus as gen

ROOT = Path(__file__).resolve().parents[2]
VALID_CASES = int(os.environ.get("GOTEMPLATE_DIFF_CASES", "2000"))  # per amtool version
INVALID_CASES = max(VALID_CASES // 8, 20)
BATCH = 60
SEP = "\n\x1e==CASE==\x1e\n"
SEED = int(os.environ.get("GOTEMPLATE_DIFF_SEED", "20260130"))


def _amtool_028() -> Optional[str]:
    for path in (os.environ.get("RCWEBHOOK_AMTOOL_028"), str(ROOT / ".deps/alertmanager-trixie/usr/bin/amtool")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _version(amtool: str) -> str:
    out = subprocess.run([amtool, "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+\.\d+)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


def _amtools() -> List[Tuple[str, str]]:
    found = []
    missing = []
    system = shutil.which("amtool")
    if system and _version(system) == "0.25":
        found.append(("0.25", system))
    else:
        missing.append("Debian 12's amtool 0.25 (apt-get install prometheus-alertmanager)")
    trixie = _amtool_028()
    if trixie and _version(trixie) == "0.28":
        found.append(("0.28", trixie))
    else:
        missing.append("Debian 13's amtool 0.28 (.ci/fetch-amtool-trixie)")
    if missing:
        message = "missing for the template differential test: " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        if not found:
            pytest.skip(message)
        print(message)
    return found


class Outcome:
    __slots__ = ("rc", "out", "err")

    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err

    def message(self, prefix: str) -> str:
        text = self.err.strip()
        return text[len(prefix):] if text.startswith(prefix) else text


def _argv(glob: Path, text: str, data: Path) -> List[str]:
    return ["template", "render", f"--template.glob={glob}", f"--template.text={text}", f"--template.data={data}"]


class Runner:
    """Runs one command line through amtool (a process) and rcwebhook (in this process, the same argv)."""

    def __init__(self, version: str, amtool: str, workdir: Path) -> None:
        self.version, self.amtool, self.workdir = version, amtool, workdir
        self.calls = 0
        self.serial = 0
        self.lock = threading.Lock()

    def run(self, files: Dict[str, str], text: str, data: Path) -> Tuple[Outcome, Outcome]:
        with self.lock:
            self.serial += 1
            self.calls += 1
            d = self.workdir / f"b{self.serial}"
        d.mkdir()
        for name, body in files.items():
            (d / name).write_text(body, encoding="utf-8")
        argv = _argv(d / "*.tmpl", text, data)
        env = dict(os.environ, HOME=str(self.workdir))
        proc = subprocess.Popen([self.amtool] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = io.StringIO(), io.StringIO()
        rc = cli.main(argv, environ=_environ(self.version), stdout=out, stderr=err)
        ours = Outcome(rc, out.getvalue(), err.getvalue())
        a_out, a_err = proc.communicate(timeout=120)
        theirs = Outcome(proc.returncode, a_out.decode("utf-8", "replace"), a_err.decode("utf-8", "replace"))
        shutil.rmtree(d)
        return theirs, ours


class Tally:
    def __init__(self) -> None:
        self.valid = self.invalid = self.mismatches = 0
        self.same_message = 0
        self.examples: List[str] = []
        self.full: List[dict] = []

    def record(self, case: str, theirs: Outcome, ours: Outcome, data: Optional[Path] = None) -> None:
        if theirs.rc == 0:
            self.valid += 1
            ok = ours.rc == 0 and ours.out == theirs.out
        else:
            self.invalid += 1
            ok = ours.rc != 0
            if ok and theirs.message("amtool: error: ") == ours.message("rcwebhook: error: "):
                self.same_message += 1
            elif ok and os.environ.get("GOTEMPLATE_DIFF_MESSAGES"):
                with open(os.environ["GOTEMPLATE_DIFF_MESSAGES"], "a", encoding="utf-8") as f:
                    f.write(json.dumps([theirs.message("amtool: error: "), ours.message("rcwebhook: error: ")],
                                       ensure_ascii=False) + "\n")
        if not ok:
            self.mismatches += 1
            self.full.append({"case": case, "data": data.read_text(encoding="utf-8") if data else None,
                              "amtool": [theirs.rc, theirs.out, theirs.err], "rcwebhook": [ours.rc, ours.out, ours.err]})
            if theirs.rc == 0 and ours.rc == 0:
                at = next((i for i, (x, y) in enumerate(zip(theirs.out, ours.out)) if x != y),
                          min(len(theirs.out), len(ours.out)))
                theirs = Outcome(0, f"…{theirs.out[max(at - 60, 0):at + 100]}", "")
                ours = Outcome(0, f"…{ours.out[max(at - 60, 0):at + 100]}", "")
            if len(self.examples) < 6:
                self.examples.append(f"case {case!r}\n  amtool rc={theirs.rc} out={theirs.out[:160]!r} "
                                     f"err={theirs.err.strip()[:300]!r}\n  rcwebhook rc={ours.rc} "
                                     f"out={ours.out[:160]!r} err={ours.err.strip()[:300]!r}")


def _defined(cases: List[Tuple[str, str]]) -> Tuple[Dict[str, str], str]:
    """Cases as defined templates of one glob file, and one text calling them all."""
    files = {"helpers.tmpl": gen.helpers_file(),
             "cases.tmpl": "".join(f'{{{{ define "{name}" }}}}{body}{{{{ end }}}}\n' for name, body in cases)}
    return files, SEP.join(f'{{{{ template "{name}" . }}}}' for name, _ in cases)


def _check_defined(runner: Runner, tally: Tally, cases: List[Tuple[str, str]], data: Path,
                   first: Optional[Tuple[Outcome, Outcome]] = None) -> None:
    """Compare a batch; halve it on any difference until each difference is one case."""
    theirs, ours = first or runner.run(*_defined(cases), data)
    if theirs.rc == 0 and ours.rc == 0 and theirs.out == ours.out:
        tally.valid += len(cases)
        return
    if len(cases) == 1:
        tally.record(cases[0][1], theirs, ours, data)
        return
    half = len(cases) // 2
    _check_defined(runner, tally, cases[:half], data)
    _check_defined(runner, tally, cases[half:], data)


def _predicted_valid(version: str, body: str, data: Path, helpers: Path) -> bool:
    """Whether rcwebhook renders the case (only to group the likely valid ones into batches)."""
    out, err = io.StringIO(), io.StringIO()
    argv = _argv(helpers, body, data)
    return cli.main(argv, environ=_environ(version), stdout=out, stderr=err) == 0


def _environ(version: str) -> Dict[str, str]:
    """rcwebhook's environment: the version followed, and amtool's TZ (times' .Local is in its zone)."""
    return {"RCWEBHOOK_TEMPLATE_COMPAT": version, **{k: v for k, v in os.environ.items() if k == "TZ"}}


@pytest.fixture(scope="module")
def amtools() -> List[Tuple[str, str]]:
    return _amtools()


def test_rcwebhook_renders_as_amtool_does(amtools: List[Tuple[str, str]], tmp_path: Path) -> None:
    started = time.monotonic()
    report = []
    failures = []
    for version, amtool in amtools:
        rng = random.Random(f"{SEED}-{version}")
        workdir = tmp_path / version
        workdir.mkdir()
        datas = []
        for i in range(16):
            path = workdir / f"data{i}.json"
            path.write_text(json.dumps(gen.data_set(rng), ensure_ascii=rng.random() < 0.5), encoding="utf-8")
            datas.append(path)
        empty = workdir / "data-no-alerts.json"
        empty.write_text(json.dumps(gen.data_set(rng, with_alerts=False)), encoding="utf-8")
        runner = Runner(version, amtool, workdir)
        tally = Tally()
        helpers = workdir / "helpers.tmpl"
        helpers.write_text(gen.helpers_file(), encoding="utf-8")
        jobs = []  # (kind, cases or body, data): one amtool run each
        batch: List[Tuple[str, str]] = []
        for i in range(VALID_CASES):
            body = gen.valid_case(rng, version)
            data = datas[(i // BATCH) % len(datas)]
            if _predicted_valid(version, body, data, helpers):
                batch.append((f"case_{i}", body))
                if len(batch) == BATCH:
                    jobs.append(("defined", batch, data))
                    batch = []
            else:
                jobs.append(("text", body, data))
        if batch:
            jobs.append(("defined", batch, datas[0]))
        for i in range(INVALID_CASES):
            body = gen.invalid_case(rng, version)
            data = datas[i % len(datas)] if i % 5 else empty
            if i % 2:
                jobs.append(("text", body, data))
            else:
                jobs.append(("defined", [(f"bad_{i}", body)], data))

        def run(job):
            kind, what, data = job
            if kind == "text":
                return runner.run({"helpers.tmpl": gen.helpers_file()}, what, data)
            return runner.run(*_defined(what), data)

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(run, jobs))
        for (kind, what, data), (theirs, ours) in zip(jobs, results):
            if kind == "text":
                tally.record(what, theirs, ours, data)
            else:
                _check_defined(runner, tally, what, data, (theirs, ours))
        report.append(f"amtool {version}: {tally.valid + tally.invalid} cases ({tally.valid} valid, "
                      f"{tally.invalid} invalid; {tally.same_message} of the invalid with amtool's very "
                      f"message), {tally.mismatches} mismatches, {runner.calls} amtool runs")
        if tally.mismatches:
            failures.append(f"amtool {version}:\n" + "\n".join(tally.examples))
            (ROOT / "build").mkdir(exist_ok=True)
            (ROOT / "build" / f"gotemplate-mismatches-{version}.json").write_text(
                json.dumps(tally.full, indent=1, ensure_ascii=False), encoding="utf-8")
    summary = "\n".join(report) + f"\nin {time.monotonic() - started:.1f} s"
    print("\n" + summary)
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "gotemplate-differential.txt").write_text(summary + "\n", encoding="utf-8")
    assert not failures, summary + "\n" + "\n".join(failures)


REGEXP_CASES = int(os.environ.get("GOTEMPLATE_DIFF_REGEXP_CASES", "3000"))  # per amtool version


def test_regular_expressions_run_as_amtools_do(amtools: List[Tuple[str, str]], tmp_path: Path) -> None:
    """match and reReplaceAll on seeded patterns, replacements and texts (classes, anchors, alternation,
    counted and lazy repetition, Unicode classes, case folding, named groups, $-expansion) render as
    in amtool, all in one run; each pattern Go refuses fails in both with Go's very message."""
    report, failures = [], []
    for version, amtool in amtools:
        rng = random.Random(f"{SEED}-regexp-{version}")
        workdir = tmp_path / version
        workdir.mkdir()
        data = workdir / "data.json"
        data.write_text(json.dumps(gen.data_set(rng)), encoding="utf-8")
        runner = Runner(version, amtool, workdir)
        tally = Tally()
        cases = [(f"re_{i}", gen.regexp_case(rng, version)) for i in range(REGEXP_CASES)]
        cases += [(f"re_edge_{i}", body) for i, body in enumerate(gen.regexp_edge_cases())]
        for at in range(0, len(cases), 2000):  # a command line argument holds 128 KiB at most
            _check_defined(runner, tally, cases[at:at + 2000], data)
        invalid = gen.INVALID_PATTERNS + (gen.INVALID_PATTERNS_025 if version == "0.25" else [])
        texts = [f"{{{{ match {json.dumps(p)} \"xa\" }}}}" if i % 2 else f"{{{{ reReplaceAll {json.dumps(p)} \"y\" \"xa\" }}}}"
                 for i, p in enumerate(invalid)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda text: runner.run({"helpers.tmpl": ""}, text, data), texts))
        same = 0
        for text, (theirs, ours) in zip(texts, results):
            tally.record(text, theirs, ours, data)
            if theirs.rc and ours.rc and theirs.message("amtool: error: ") != ours.message("rcwebhook: error: "):
                tally.mismatches += 1
                tally.examples.append(f"{text}: amtool {theirs.err.strip()!r}, rcwebhook {ours.err.strip()!r}")
            same += theirs.rc != 0
        report.append(f"amtool {version}: {len(cases)} regular expression cases, {same} of {len(texts)} refused "
                      f"patterns refused by amtool, {tally.mismatches} mismatches, {runner.calls} amtool runs")
        if tally.mismatches or same != len(texts):
            failures.append(f"amtool {version}:\n" + "\n".join(tally.examples))
    print("\n" + "\n".join(report))
    assert not failures, "\n".join(report + failures)


def test_the_command_line_is_the_same_program(amtools: List[Tuple[str, str]], tmp_path: Path) -> None:
    """rcwebhook.py run as a process gives what the in-process runs above give (a few cases)."""
    import sys
    version, amtool = amtools[-1]
    data = tmp_path / "d.json"
    data.write_text(json.dumps(gen.data_set(random.Random(7))), encoding="utf-8")
    glob = tmp_path / "x.tmpl"
    glob.write_text(gen.helpers_file(), encoding="utf-8")
    for text in ('{{ template "helper_data" . }} {{ .CommonLabels }}', "{{ if }}", "{{ index .Alerts 99 }}"):
        argv = _argv(glob, text, data)
        theirs = subprocess.run([amtool] + argv, capture_output=True, timeout=60, env=dict(os.environ, HOME=str(tmp_path)))
        ours = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py")] + argv, capture_output=True, timeout=60,
                              env=dict(os.environ, RCWEBHOOK_TEMPLATE_COMPAT=version))
        assert (ours.returncode == 0) == (theirs.returncode == 0), (text, ours, theirs)
        assert ours.stdout == theirs.stdout
        if theirs.returncode:
            assert ours.stderr.decode().replace("rcwebhook: error: ", "").strip() == \
                theirs.stderr.decode().replace("amtool: error: ", "").strip()


_TIMES = re.compile(r"time\.Date\([^)]*\)|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+( m=[+-][\d.]+)?")


def test_without_template_data_each_version_renders_its_own_sample_data(amtools: List[Tuple[str, str]],
                                                                        tmp_path: Path) -> None:
    """amtool's data when --template.data is not given: byte for byte but for the times, which are now in both
    (0.25's alerts are `alertstatus`; 0.28's one firing and one resolved)."""
    import sys
    glob = tmp_path / "empty.tmpl"
    glob.write_text("", encoding="utf-8")
    text = ('{{ printf "%#v" . }}|{{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved|'
            '{{ range .Alerts }}{{ (.EndsAt.Sub .StartsAt).Minutes | printf "%.0f" }} {{ end }}')
    argv = ["template", "render", f"--template.glob={glob}", f"--template.text={text}"]
    for version, amtool in amtools:
        theirs = subprocess.run([amtool] + argv, capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, HOME=str(tmp_path)))
        ours = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py")] + argv, capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, RCWEBHOOK_TEMPLATE_COMPAT=version))
        assert theirs.returncode == ours.returncode == 0, (theirs.stderr, ours.stderr)
        assert _TIMES.sub("T", ours.stdout) == _TIMES.sub("T", theirs.stdout), version
        assert ("1 firing, 1 resolved" if version != "0.25" else "0 firing, 0 resolved") in ours.stdout
        assert ours.stdout.endswith("|5 10 ")


def test_a_parse_error_at_the_end_of_a_file_reads_as_amtools(amtools: List[Tuple[str, str]], tmp_path: Path) -> None:
    """The configuration check tells a template file's parse error with amtool's very message."""
    from rcwebhook.cli import compile_templates
    from rcwebhook.config.settings import build
    bad = tmp_path / "b1.tmpl"
    bad.write_text('{{ define "x" }}\nhello\n{{ if .Status }}\nyes\n', encoding="utf-8")
    errors: list = []
    build({"DRY_RUN": "true", "TEMPLATE_FILES": str(bad), "TEMPLATE_TEXT": "x"}, errors, [],
          compile_templates=compile_templates)
    for version, amtool in amtools:
        theirs = subprocess.run([amtool, "template", "render", f"--template.glob={bad}", "--template.text=x"],
                                capture_output=True, text=True, timeout=60, env=dict(os.environ, HOME=str(tmp_path)))
        assert errors == [f"TEMPLATE_FILES: {bad}: " + theirs.stderr.strip().replace("amtool: error: ", "")], version


# Cases the seeded corpus does not reach, each found to differ once: (JSON data or None, text).
EDGE_CASES = [
    ('{"Receiver":"a","RECEIVER":"b"}', "{{ .Receiver }}"),  # Go's decoder: the last matching key wins
    ('{"RECEIVER":"b","Receiver":"a"}', "{{ .Receiver }}"),
    ('{"receiver":"b","Receiver":"a","RECEIVER":"c"}', "{{ .Receiver }}"),
] + [(None, '{{ humanizeDuration "%s" }}' % number) for number in (
    "+nan", "-nan", "--inf", "+-1", "infin", "+Inf", "-Infinity", "NaN",  # strconv.ParseFloat's words
    "1e400", "-1e400", "0x1p2000", "1.7976931348623159e308", "1e-400",  # out of range, and underflow
    "0x1p-2", "1_000", "1__000", "1_e3", "0x1.8p1",  # hexadecimal and underscores, as ParseFloat reads them
    "1e19", "-1e300", "9.2e18", "1.7976931348623158e308",  # past int64: Go's conversion on amd64
)]


@pytest.mark.parametrize("data, text", EDGE_CASES)
def test_edge_cases_render_or_fail_as_amtools_do(amtools: List[Tuple[str, str]], tmp_path: Path,
                                                 data: Optional[str], text: str) -> None:
    """What each amtool prints or refuses, rcwebhook prints or refuses in the same words."""
    data_file = tmp_path / "d.json"
    data_file.write_text(data or "{}", encoding="utf-8")  # humanizeDuration's cases read no data
    compared = 0
    for version, amtool in amtools:
        theirs, ours = Runner(version, amtool, tmp_path).run({"x.tmpl": ""}, text, data_file)
        if 'function "humanizeDuration" not defined' in theirs.err:
            continue  # 0.25 has no humanizeDuration
        assert (ours.rc, ours.out, ours.err.replace("rcwebhook: ", "").strip()) == \
            (theirs.rc, theirs.out, theirs.err.replace("amtool: ", "").strip()), version
        compared += 1
    assert compared, "no amtool of this case's version"
