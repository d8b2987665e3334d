"""Training toward a quality target: dev F1 along a run, the time it took to reach a target
(MLPerf Training's metric: how much sooner does a mode give a usable model), and whether a run
had converged when it stopped.

A dev point is taken every K steps from a snapshot of the weights, outside the timed steps;
`train_s` is the training time up to that step (steps only: warm-up and compilation included,
evaluation, the snapshots and the CUDA warm-up step run under the profiler excluded), `wall_s`
the wall time of the run up to the end of that evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accelbench.config.specs import target_f1

NEAR_ZERO = 0.05  # a dev F1 below this has learnt next to nothing
STILL_RISING = 0.005  # the last point above every earlier one by more than this: not converged


@dataclass(frozen=True)
class DevPoint:
    step: int
    sentences: int
    train_s: float
    wall_s: float
    f1: float

    def to_json(self) -> list:
        return [self.step, self.sentences, self.train_s, self.wall_s, self.f1]


def eval_steps(steps: int, every: int | None) -> list[int]:
    """The 1-based steps after which a dev point is taken: every `every` steps (default: five
    points), and always the last step."""
    every = every or max(1, steps // 5)
    return sorted({*range(every, steps + 1, every), steps})


def resolve_target(text: str, reference_dev_f1: float | None) -> tuple[float | None, str]:
    """The absolute dev F1 a --target-f1 asks for, and how it was set; None when it is
    relative and the reference's dev F1 is not known or near zero."""
    relative, value = target_f1(text)
    if not relative:
        return value, f"dev F1 {value:.4f}"
    if reference_dev_f1 is None:
        return None, f"{value:g} of the fp32 reference's dev F1, which is unknown"
    if reference_dev_f1 < NEAR_ZERO:
        return None, (
            f"{value:g} of the fp32 reference's dev F1 {reference_dev_f1:.4f}, which is near "
            "zero (any run would reach it): give more --train-steps or an absolute --target-f1"
        )
    target = value * reference_dev_f1
    return target, f"{value:g} × the fp32 reference's dev F1 {reference_dev_f1:.4f} = {target:.4f}"


def time_to_target(curve: Sequence[DevPoint], target: float) -> dict:
    """When the run first reached `target` (at the first dev point at or above it)."""
    reached = next((p for p in curve if p.f1 >= target), None)
    best = max(curve, key=lambda p: p.f1)
    if reached is None:
        return {
            "target_reached": False,
            "steps_to_target": None,
            "sentences_to_target": None,
            "time_to_target_train_s": None,
            "time_to_target_wall_s": None,
            "target_note": f"not reached: best dev F1 {best.f1:.4f} at step {best.step}",
        }
    return {
        "target_reached": True,
        "steps_to_target": reached.step,
        "sentences_to_target": reached.sentences,
        "time_to_target_train_s": reached.train_s,
        "time_to_target_wall_s": reached.wall_s,
        "target_note": None,
    }


def convergence(curve: Sequence[DevPoint]) -> dict:
    """Whether the run looks trained: dev F1 near zero, or still rising at its last point,
    says more steps would change the answer."""
    last = curve[-1]
    earlier = max((p.f1 for p in curve[:-1]), default=None)
    reasons = []
    if last.f1 < NEAR_ZERO:
        reasons.append(f"dev F1 {last.f1:.3f} is near zero")
    if earlier is not None and last.f1 > earlier + STILL_RISING:
        reasons.append(f"dev F1 still rising at the end ({earlier:.3f} → {last.f1:.3f})")
    return {
        "undertrained": bool(reasons),
        "undertrained_reason": "; ".join(reasons) + "; give more --train-steps"
        if reasons
        else None,
    }
