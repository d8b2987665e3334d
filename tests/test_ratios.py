"""Speed ratios are built on time per sentence, so cells of other batch sizes compare honestly."""

import numpy as np
import pytest

from accelbench.measure.stats import bootstrap_ratio
from accelbench.report.ratios import speed_ratio, timing


def _infer(batch: int, seconds: list[float], sentences: list[int] | None = None, **metrics):
    samples = {"latency_s": seconds, **({"sentences": sentences} if sentences else {})}
    spec = {"workload": "infer", "batch_size": batch}
    return {"spec": spec, "samples": samples, "metrics": {"batch_size_ran": batch, **metrics}}


def test_unequal_batches_compare_per_sentence():
    rng = np.random.default_rng(0)
    small = _infer(16, list(0.16 * (1 + 0.01 * rng.standard_normal(40))), [16] * 40)
    large = _infer(32, list(0.20 * (1 + 0.01 * rng.standard_normal(40))), [32] * 40)
    ci = speed_ratio(small, large)
    # 100 vs 160 sentences/s: 1.6x faster, though each of its iterations takes longer
    assert ci.ratio == pytest.approx(1.6, rel=0.01)
    assert ci.low < 1.6 < ci.high and ci.low > 1.5
    per_iteration = bootstrap_ratio(small["samples"]["latency_s"], large["samples"]["latency_s"])
    assert per_iteration.ratio == pytest.approx(0.8, rel=0.01)  # what a per-iteration ratio says


def test_a_pass_with_a_partial_last_batch():
    # 40 sentences at batch 16: batches of 16, 16 and 8, cycled; one pass = 40 sentences
    rec = _infer(16, [0.16, 0.16, 0.08] * 4, distinct_batches=3, eval_sentences=40)
    t = timing(rec)
    assert t.sentences == [16.0, 16.0, 8.0] * 4 and t.strata == 3
    stored = _infer(16, [0.16, 0.16, 0.08] * 4, [16, 16, 8] * 4, distinct_batches=3)
    assert timing(stored).sentences == t.sentences
    twice_as_fast = _infer(40, [0.2] * 12, distinct_batches=1, eval_sentences=40)
    assert speed_ratio(rec, twice_as_fast).ratio == pytest.approx(2.0)


def test_units_must_match_samples():
    with pytest.raises(ValueError, match="one value per sample"):
        bootstrap_ratio([1.0, 1.0], [1.0], numerator_units=[1.0])
