"""Shared fixtures: a tiny BERT saved to disk with the bundled vocabulary, one tiny fine-tuned
checkpoint for the whole session, a tiny CoNLL dir, the flags that keep end-to-end runs short,
and test-only runtimes installed as entry-point plug-ins. The guards of the fast tier: a test
not marked slow may not ask for the tiny model or start a Python process (a cell).

Torch-free at import (the fast tier's workers import torch only where a test module does)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from accelbench.config.runtimes import ENTRY_POINT_GROUP

HERE = Path(__file__).parent

# the suite's CPU bf16 cells run on any CPU, emulated where it has no bf16 instructions (their
# refusal without this is tested in test_precision_probe.py, which also checks the name against
# accelbench.backends.precision.EMULATE_ENV); cell processes inherit it
os.environ["ACCELBENCH_CPU_BF16"] = "emulated"
# one thread for torch in this process and in every process the suite starts (two workers
# share the cores); a test that wants more passes --threads
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

# fixtures only a slow test may use: a model on disk, or processes started for it
SLOW_FIXTURES = {"tiny_model_dir", "tiny_checkpoint"}

# `accelbench run` flags that keep an end-to-end run on the tiny model to seconds per cell
FAST = [
    "--train-steps",
    "12",
    "--batch-size",
    "16",
    "--eval-limit",
    "48",
    "--min-iters",
    "3",
    "--min-time",
    "0.1",
    "--warmup-iters",
    "1",
    # a hung cell fails its test in minutes (pytest's own per-test limit is in pyproject.toml)
    "--cell-timeout",
    "300",
]
NO_CEILINGS = ["--no-ceilings"]

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
}

CONLL_TRAIN = """-DOCSTART- O

John I-PER
Smith I-PER
lives O
in O
Paris I-LOC
. O

Mary I-PER
went O
to O
Berlin I-LOC
"""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT plus the shipped bert-base-uncased tokenizer, saved
    like a hub model (no model package needed)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from accelbench.data.models import vocab_dir

    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(BertConfig(vocab_size=30522, **TINY)).save_pretrained(path)
    AutoTokenizer.from_pretrained(vocab_dir()).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny BERT fine-tuned once (the bundled data, FAST's steps), for the tests that only
    need a checkpoint (`--checkpoint`): one fine-tune per test session, shared by the xdist
    workers through a lock in their common temporary directory."""
    from filelock import FileLock

    from helpers import run_tiny

    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: its own temporary directory
        root = tmp_path_factory.mktemp("tiny-checkpoint")
    else:  # the directory all workers of this run share (pytest-N/, above popen-gwK/)
        root = tmp_path_factory.getbasetemp().parent / "tiny-checkpoint"
        root.mkdir(exist_ok=True)
    checkpoint = root / "run" / "checkpoint"
    with FileLock(str(root / "lock")):
        if not (checkpoint / "config.json").is_file():
            run_tiny(tiny_model_dir, root / "run", "--workloads", "train", "--precisions", "fp32")
    return checkpoint


@pytest.fixture
def conll_dir(tmp_path) -> Path:
    from helpers import write_conll

    return write_conll(tmp_path)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test of the fast tier (not marked slow) that asks for the tiny model fails before its
    fixtures are built: the fast tier holds no model and no cell process."""
    if item.get_closest_marker("slow") is None:
        wanted = SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        if wanted:
            pytest.fail(f"{item.nodeid} uses {sorted(wanted)}: mark it @pytest.mark.slow")


class NoInterpreter(subprocess.Popen):
    """Popen that refuses to start a Python interpreter (a cell, the CLI, torchrun, a
    script); small tools (git) still run."""

    def __init__(self, args, *rest, **kw) -> None:
        program = args if isinstance(args, str) else str(next(iter(args), ""))
        if Path(program.split()[0] if program else "").name.startswith("python"):
            raise AssertionError(
                f"a test not marked slow started {args!r}: mark it @pytest.mark.slow"
            )
        super().__init__(args, *rest, **kw)


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_interpreter(request, monkeypatch) -> None:
    """Outside the slow tier, starting a Python process (a cell, the CLI) fails."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setattr(subprocess, "Popen", NoInterpreter)


def install_plugins(site: Path, mp: pytest.MonkeyPatch, **targets: str) -> None:
    """Install test-only runtimes (modules in tests/) the way a plug-in package does: a
    distribution in `site` whose `accelbench.runtimes` entry points name them, on the path of
    this process and of every cell process it starts; `mp` undoes it."""
    dist = site / "accelbench_test_runtimes-0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: accelbench-test-runtimes\nVersion: 0.0\n"
    )
    entries = "".join(f"{name} = {target}\n" for name, target in targets.items())
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entries}")
    for path in (HERE, site):
        mp.syspath_prepend(str(path))
    path = [str(HERE), str(site), os.environ.get("PYTHONPATH", "")]
    mp.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))


@pytest.fixture
def plugin_runtimes(tmp_path, monkeypatch) -> Callable[..., None]:
    """`install_plugins` for one test: call it with name="module:Class" pairs."""

    def install(**targets: str) -> None:
        install_plugins(tmp_path / "plugin-site", monkeypatch, **targets)

    return install


def assert_scored(metrics: dict, eval_limit: int = 48, dataset: str = "bundled") -> None:
    """A cell's entity scores describe its eval set: as many gold entities as the first
    `eval_limit` test sentences hold, per-type supports adding up to them, F1 the harmonic mean
    of the precision and recall recorded beside it."""
    from seqeval.metrics.sequence_labeling import get_entities

    from accelbench.data.corpus import load_corpus

    test = load_corpus(dataset, 42).test[:eval_limit]
    gold = sum(len(get_entities(list(s.tags))) for s in test)
    assert metrics["entities"] == gold > 0
    assert sum(v["support"] for v in metrics["f1_per_type"].values()) == gold
    p, r = metrics["precision"], metrics["recall"]
    assert metrics["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
