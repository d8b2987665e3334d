"""What a cell process costs around its work: starting and importing what a cell imports, and
ending once its result is out, with the interpreter's teardown (a plain exit) and without it
(what accelbench's cell process does: runner.isolate._exit_now).

    python bench/cell_exit.py [--repeats 5]

Prints the median of each over the repeats. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORTS = """
import time, sys
import torch
from transformers import BertForTokenClassification
from accelbench.workloads.infer import run_infer
from accelbench.workloads.train import run_train
sys.stdout.write(repr(time.time()))
sys.stdout.flush()
"""
ENDINGS = {
    "interpreter teardown": "",
    "accelbench's _exit_now": "from accelbench.runner.isolate import _exit_now\n_exit_now()\n",
}


def one(ending: str) -> tuple[float, float]:
    """(seconds from start to imports done, seconds from then to the process's end)."""
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORTS + ending],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    imported = float(proc.stdout.read())
    proc.wait()
    return imported - started, time.time() - imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, ending in ENDINGS.items():
        runs = [one(ending) for _ in range(args.repeats)]
        start = statistics.median(r[0] for r in runs)
        end = statistics.median(r[1] for r in runs)
        print(f"{name:24s} start + imports {start:.2f} s, result to exit {end:.3f} s")


if __name__ == "__main__":
    main()
