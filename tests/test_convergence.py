"""Time to a target dev F1 and the convergence flag, on dev-F1 curves whose answers are known."""

import pytest

from accelbench.config.specs import RunConfig
from accelbench.errors import UserError
from accelbench.measure.convergence import (
    DevPoint,
    convergence,
    eval_steps,
    resolve_target,
    time_to_target,
)

CURVE = [  # step, sentences, train s, wall s, dev F1
    DevPoint(20, 320, 10.0, 12.0, 0.05),
    DevPoint(40, 640, 20.0, 24.0, 0.22),
    DevPoint(60, 960, 30.0, 36.0, 0.31),
    DevPoint(80, 1280, 40.0, 48.0, 0.30),
]


def test_first_point_at_or_above_the_target():
    got = time_to_target(CURVE, 0.22)
    assert got["target_reached"] is True
    assert (got["steps_to_target"], got["sentences_to_target"]) == (40, 640)
    assert (got["time_to_target_train_s"], got["time_to_target_wall_s"]) == (20.0, 24.0)


def test_not_reached_names_the_best():
    got = time_to_target(CURVE, 0.5)
    assert got["target_reached"] is False and got["steps_to_target"] is None
    assert got["target_note"] == "not reached: best dev F1 0.3100 at step 60"


def test_relative_targets_follow_the_reference():
    assert resolve_target("0.3", None) == (0.3, "dev F1 0.3000")
    target, how = resolve_target("ref:0.9", 0.4)
    assert target == pytest.approx(0.36) and "0.9 × the fp32 reference's dev F1 0.4000" in how
    assert resolve_target("ref:0.9", None)[0] is None
    # a reference that learnt nothing sets no target: 0.9 × 0 would be reached by any run
    target, how = resolve_target("ref:0.9", 0.0)
    assert target is None and "near zero" in how and "--train-steps" in how


def test_bad_targets_are_user_errors():
    for bad in ("1.2", "ref:", "ref:0", "high", "-0.1"):
        with pytest.raises(UserError, match="--target-f1 must be an F1 in"):
            RunConfig(target_f1=bad)
    assert RunConfig(target_f1=0.35).target_f1 == "0.35"


def test_eval_points():
    assert eval_steps(100, None) == [20, 40, 60, 80, 100]
    assert eval_steps(50, 15) == [15, 30, 45, 50]
    assert eval_steps(3, None) == [1, 2, 3]


def test_a_run_still_rising_or_near_zero_is_undertrained():
    assert convergence(CURVE) == {"undertrained": False, "undertrained_reason": None}
    rising = convergence(CURVE[:3])
    assert (
        rising["undertrained"]
        and "still rising at the end (0.220 → 0.310)" in rising["undertrained_reason"]
    )
    flat = convergence([DevPoint(10, 1, 1, 1, 0.0), DevPoint(20, 2, 2, 2, 0.01)])
    assert flat["undertrained"] and "near zero" in flat["undertrained_reason"]
    assert flat["undertrained_reason"].endswith("give more --train-steps")
