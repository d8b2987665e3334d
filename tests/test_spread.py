"""Confidence intervals across processes and seeds, checked on synthetic figures whose spread is
known."""

import math

import numpy as np
import pytest

from accelbench.measure.spread import mean_ci, paired_difference, ratio_across


def test_mean_ci_is_the_student_t_interval():
    s = mean_ci([10.0, 12.0, 14.0])
    # mean 12, sd 2, n 3: t(0.975, 2) = 4.303 -> half width 4.303 * 2 / sqrt(3) = 4.969
    assert s.mean == 12.0 and s.stdev == pytest.approx(2.0)
    assert (s.low, s.high) == pytest.approx((12 - 4.969, 12 + 4.969), abs=1e-3)
    assert s.excludes(5.0) and not s.excludes(10.0)


def test_one_value_has_no_interval():
    s = mean_ci([3.0])
    assert (s.n, s.mean, s.low, s.high) == (1, 3.0, None, None)
    assert not s.excludes(0.0)


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        s = mean_ci(rng.normal(100.0, 7.0, 5))
        hits += s.low <= 100.0 <= s.high
    assert 0.93 < hits / 2000 < 0.97


def test_paired_difference_cancels_what_pairs_share():
    seed_effect = np.array([0.30, 0.10, 0.45, 0.22])  # large differences between seeds
    reference = 0.5 + seed_effect
    worse = reference - 0.02 + np.array([0.001, -0.001, 0.0005, -0.0005])
    d = paired_difference(worse, reference)
    assert d.mean == pytest.approx(-0.02)
    assert d.high < 0  # the 2-point drop is established despite the seed spread
    with pytest.raises(ValueError, match="differ in number"):
        paired_difference([1.0], [1.0, 2.0])


def test_ratio_across_processes_with_known_variance():
    rng = np.random.default_rng(0)
    base = 100 * np.exp(rng.normal(0, 0.03, 5))
    slower = 70 * np.exp(rng.normal(0, 0.03, 5))
    r = ratio_across(base, slower)
    assert r.ratio == pytest.approx(math.exp(np.log(slower).mean() - np.log(base).mean()))
    assert r.low < 0.7 < r.high and r.high < 0.9  # a 30 % drop, clearly outside 10 %
    same = ratio_across(base, 100 * np.exp(rng.normal(0, 0.03, 5)))
    assert same.low < 1 < same.high
    assert ratio_across([100.0], slower) is None
