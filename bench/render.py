"""In-process template rendering over the seeded corpus of the engine tests: the figure behind the claim
that compiled templates keep their speed (bench/run.py measures delivery with templates end to end).

Every valid template of tests/gotemplate/corpus.py's seeded corpus (both compat levels) is parsed and run
once (so that it is compiled), then all are rendered ROUNDS times; the best of REPEATS is printed, in
milliseconds of the process's CPU time (steadier than the clock on a shared machine) for the whole corpus,
with the number of templates that rendered.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rcwebhook.amtemplate import data as amdata  # noqa: E402
from rcwebhook.amtemplate import functions as amfunctions  # noqa: E402
from rcwebhook.gotemplate import template as gotemplate  # noqa: E402
from tests.gotemplate import corpus as gen  # noqa: E402

SEED = 20261127


def corpus(cases: int):
    """Return (template, data) pairs of the corpus that render without error."""
    found = []
    for compat in ("0.25", "0.28"):
        rng = random.Random(f"{SEED}-{compat}")
        datas = [amdata.data_from_json(gen.data_set(rng)) for _ in range(6)]
        for i in range(cases):
            body = gen.valid_case(rng, compat)
            tmpl = amfunctions.new_template(compat)
            try:
                tmpl.parse("helpers.tmpl", gen.helpers_file())
                tmpl.parse("case", body)
                amfunctions.check_regexps(tmpl)
                data = datas[i % len(datas)]
                tmpl.execute("case", data)
            except gotemplate.TemplateError:
                continue
            found.append((tmpl, data))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=400, help="templates generated per compat level")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pairs = corpus(args.cases)
    best = float("inf")
    for _ in range(args.repeats):
        started = time.process_time()
        for _ in range(args.rounds):
            for tmpl, data in pairs:
                tmpl.execute("case", data)
        best = min(best, time.process_time() - started)
    print(f"{len(pairs)} templates x {args.rounds} rounds: best of {args.repeats} {best * 1000:.1f} ms of CPU time "
          f"({best / args.rounds / len(pairs) * 1e6:.1f} us per render)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
