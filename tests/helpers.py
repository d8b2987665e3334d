"""What many test files need: a run's records, the `accelbench run` argv on the tiny model, a fake
clock, waiting for processes to end, CoNLL directories. Torch-free at import."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import CONLL_TRAIN, FAST, NO_CEILINGS

# FAST without the ceilings measurement (one test, test_integration's MFU check, keeps it)
QUICK = [*FAST, *NO_CEILINGS]

# one subword per word (plus [CLS] and [SEP]): 7 training sentences of 4 to 22 tokens, not a
# multiple of batch 3; bucket padding puts the shortest three at width 16, the rest at 32
WORDS = [
    "john", "went", "to", "paris", "and", "saw", "the", "man", "with", "his",
    "dog", "in", "the", "park", "on", "a", "sunny", "day", "then", "home",
]  # fmt: skip
CORPUS_WORDS = (3, 5, 18, 4, 20, 6, 2)


def read_records(run_dir: Path) -> list[dict]:
    """results.jsonl of a run, in the order the cells were recorded."""
    return [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]


def tiny_argv(model: Path, out: Path, *flags: str) -> list[str]:
    """`accelbench run` on `model` into `out` with QUICK's settings; `flags` come last and
    override them."""
    return ["run", "--model", str(model), "--out", str(out), *QUICK, *flags]


def run_tiny(model: Path, out: Path, *flags: str) -> list[dict]:
    """Run `tiny_argv` in this process; it must exit 0. Its records."""
    from accelbench.cli import main

    assert main(tiny_argv(model, out, *flags)) == 0
    return read_records(out)


def write_conll(directory: Path, text: str = CONLL_TRAIN) -> Path:
    """`directory` as a CoNLL dataset: train, valid and test all `text`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (directory / name).write_text(text)
    return directory


def write_varied_conll(directory: Path) -> Path:
    """A CoNLL dataset of CORPUS_WORDS-long sentences (shapes for padding policies to differ)."""
    lines = []
    for n in CORPUS_WORDS:
        lines += [f"{WORDS[j]} {'B-PER' if j == 0 else 'O'}" for j in range(n)] + [""]
    return write_conll(directory, "\n".join(lines))


class FakeClock:
    """A clock that advances by `tick` per read, and by whatever a test adds to `t`."""

    def __init__(self, tick: float = 0.0) -> None:
        self.t, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def alive(pid: int) -> bool:
    """Running (a zombie left for a reaper that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], hang_s: float = 300.0) -> bool:
    """Wait until none of `pids` runs. `hang_s` only tells a process that never ends from one
    that ends late on a busy machine: no verdict depends on how soon they end."""
    deadline = time.monotonic() + hang_s
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_for(path: Path, hang_s: float = 300.0) -> bool:
    """Wait until `path` exists (a readiness file a test process writes); False on a hang."""
    deadline = time.monotonic() + hang_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def c_stdio_write(text: str) -> int:
    """Write `text` through the C library's buffered stdout, as C extensions' messages go (run in
    an isolated child: its stdout is a log file, so the C library holds the text back)."""
    import ctypes

    return ctypes.CDLL(None).printf(b"%s", text.encode())


def mark_at_exit(path: str) -> None:
    """Register an exit handler that writes `path` (run in an isolated child)."""
    import atexit

    atexit.register(Path(path).write_text, "exit handlers ran")
