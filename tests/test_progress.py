"""Progress during a run: the parent draws each cell's steps on a terminal, nothing elsewhere;
the ceilings line says what was measured."""

import os
import pty
import re
import subprocess
import sys

import pytest

from accelbench.cli import main
from accelbench.runner.matrix import ceilings_line
from accelbench.runner.progress import Progress
from conftest import FAST


def test_progress_reports_round_trip():
    for p in (Progress(3, 40, "step"), Progress(7, None, "batch")):
        assert Progress.decode(p.encode().decode()) == p


def test_the_ceilings_line_names_what_was_measured():
    ceilings = {
        "device": "cpu",
        "matmul_size": 1536,
        "matmul_sizes": {"bfloat16": 768},
        "matmul_tflops": {"float32": 0.4123, "bfloat16": 0.05, "float16": None},
        "copy_gbps": 12.34,
    }
    assert ceilings_line(ceilings) == (
        "cpu ceilings: matmul float32 0.412 TFLOP/s (1536x1536), bfloat16 0.05 TFLOP/s "
        "(768x768), float16 -; copy 12.3 GB/s"
    )


def _on_a_terminal(argv: list[str]) -> str:
    """`accelbench run ARGV` in a process of its own whose stderr is a pseudo-terminal; what it
    wrote there."""
    command = [sys.executable, "-m", "accelbench", "run", *argv]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the run closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait() == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_training_cell_shows_steps_elapsed_and_eta_on_a_terminal_only(
    tiny_model_dir, tmp_path, capfd
):
    argv = ["--model", str(tiny_model_dir), "--workloads", "train", "--precisions", "fp32"]
    argv += [*FAST, "--train-steps", "60"]
    shown = _on_a_terminal([*argv, "--out", str(tmp_path / "tty")])
    bars = re.findall(r"(\d+)/60 \[(\d\d:\d\d)<(\d\d:\d\d)", shown)  # done/total [elapsed<left
    assert bars, shown[-2000:]
    assert all(0 < int(done) <= 60 for done, _, _ in bars)
    assert "step/s" in shown or "s/step" in shown
    assert re.search(r"cpu ceilings: matmul float32 [\d.]+ TFLOP/s \(\d+x\d+\); copy", shown)
    # stderr on a file (pytest's capture): the same run draws no bar
    assert main(["run", *argv, "--out", str(tmp_path / "file"), "--no-ceilings"]) == 0
    quiet = capfd.readouterr().err
    assert "/60 [" not in quiet and "\r" not in quiet
    assert "[1/1] train eager cpu fp32" in quiet
