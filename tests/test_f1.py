import numpy as np
import pytest

from accelbench.measure.accuracy import decode, entity_scores, parity


def test_entity_f1_hand_checked():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]
    s = entity_scores(gold, pred)
    # 3 gold entities, 2 predicted, both right: P = 1, R = 2/3, F1 = 0.8
    assert s["precision"] == pytest.approx(1.0)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(0.8)
    assert s["f1_per_type"]["LOC"]["f1"] == 0.0
    assert s["f1_per_type"]["PER"]["support"] == 1


def test_entity_f1_is_not_token_accuracy():
    # boundary error: 2 of 3 tokens right, but the entity is wrong
    s = entity_scores([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-PER", "O"]])
    assert s["f1"] == 0.0


def test_conlleval_semantics_i_without_b_starts_entity():
    s = entity_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])
    assert s["f1"] == 1.0


def test_decode_pads_truncated_words_with_o():
    labels = ("O", "B-X", "I-X")
    wl = [np.array([[0, 5, 0], [0, 0, 5]], dtype=np.float32)]
    assert decode(wl, [4], labels) == [["B-X", "I-X", "O", "O"]]


def test_parity():
    a = [np.array([[1.0, 2.0], [3.0, 0.0]])]
    b = [np.array([[1.5, 2.0], [0.0, 3.0]])]
    p = parity(a, b)
    assert p["max_abs_logit_diff"] == pytest.approx(3.0)
    assert p["argmax_agreement"] == pytest.approx(0.5)
