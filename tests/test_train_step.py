"""The training step: gradient accumulation is the same update as one large batch."""

import copy

import torch
from transformers import BertConfig, BertForTokenClassification

from accelbench.backends import get_backend
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.encode import Batch, synthetic_batch
from conftest import TINY

LABELS = 5


def _session(model: torch.nn.Module, grad_accum: int):
    cell = cell_for(RunConfig(grad_accum=grad_accum), "train", "eager", "cpu", "fp32", "pad-max")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    return get_backend("eager").prepare_train(model, cell, optimizer, scheduler)


def _split(batch: Batch) -> list[Batch]:
    half = batch.size // 2
    return [
        Batch(
            batch.input_ids[s],
            batch.attention_mask[s],
            batch.labels[s],
            batch.index[s],
            batch.real_tokens // 2,
        )
        for s in (slice(0, half), slice(half, None))
    ]


def test_two_accumulated_micro_batches_equal_one_step_over_both():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, num_labels=LABELS, hidden_dropout_prob=0.0, **TINY)
    config.attention_probs_dropout_prob = 0.0
    whole_model = BertForTokenClassification(config)
    accum_model = copy.deepcopy(whole_model)
    initial = copy.deepcopy(whole_model)
    batch = synthetic_batch(8, 16, 30522, LABELS, seed=1)

    whole_loss = _session(whole_model, 1).step([batch])
    accum_loss = _session(accum_model, 2).step(_split(batch))

    assert torch.allclose(whole_loss, accum_loss, atol=1e-6)
    for a, b in zip(whole_model.parameters(), accum_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(whole_model.classifier.weight, initial.classifier.weight)
