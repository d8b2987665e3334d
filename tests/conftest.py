"""Shared fixtures: a tiny BERT saved to disk with the bundled vocabulary, a tiny CoNLL dir, the
flags that keep end-to-end runs short, and test-only runtimes installed as entry-point plug-ins."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from accelbench.backends.precision import EMULATE_ENV
from accelbench.config.runtimes import ENTRY_POINT_GROUP

HERE = Path(__file__).parent

# the suite's CPU bf16 cells run on any CPU, emulated where it has no bf16 instructions (their
# refusal without this is tested in test_precision_probe.py); cell processes inherit it
os.environ[EMULATE_ENV] = "emulated"

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


@pytest.fixture
def conll_dir(tmp_path) -> Path:
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(CONLL_TRAIN)
    return tmp_path


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


def alive(pid: int) -> bool:
    """Running (a zombie left for a reaper that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
