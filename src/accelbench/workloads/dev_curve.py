"""A training cell's dev-F1 curve: the weights are copied to host memory every K steps, outside
the timed steps and the telemetry window (`window.paused()`), and scored on the dev split after
training, so evaluation never enters a step's time, the GPU's samples or its energy; time to a
target F1 is read off the curve (measure/convergence.py), the copies and `paused()` stretches
(the profiled warm-up step) left out of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import torch

from accelbench.backends.base import InferSession
from accelbench.backends.distributed import Rank
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.measure.convergence import (
    DevPoint,
    convergence,
    eval_steps,
    resolve_target,
    time_to_target,
)
from accelbench.measure.timing import synchronize
from accelbench.workloads.common import CellData, dev_view, evaluate, make_batches_for_eval
from accelbench.workloads.reference import reference_dev_f1


class Window(Protocol):
    """What the snapshots are kept out of (measure.telemetry.Telemetry)."""

    def paused(self) -> contextlib.AbstractContextManager: ...


class DevCurve:
    def __init__(
        self, steps: int, config: RunConfig, cell: CellSpec, rank: Rank, window: Window
    ) -> None:
        self.points = set(eval_steps(steps, config.eval_every))
        self.device, self.rank, self.window = cell.device, rank, window
        self.snapshots: list[tuple[int, int, float, dict]] = []
        self.sentences = 0
        self.paused_s = 0.0
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Keep what runs inside off the training clock (the warm-up step run under the
        profiler: its time is the profiler's as much as training's)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused_s += time.perf_counter() - t0

    def after_step(self, step: int, sentences: int, model: torch.nn.Module) -> None:
        """After 1-based `step` (this rank's `sentences` in it): a snapshot at a dev point.
        Every rank waits for the copy, so no rank's next step absorbs it."""
        self.sentences += sentences
        if step not in self.points:
            return
        synchronize(self.device)
        now = time.perf_counter()
        with self.window.paused():
            if self.rank.leader:
                weights = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
                trained = now - self.t0 - self.paused_s
                self.snapshots.append(
                    (step, self.sentences * self.rank.world_size, trained, weights)
                )
            self.rank.broadcast(None)
        self.paused_s += time.perf_counter() - now

    def score(
        self,
        model: torch.nn.Module,
        evaluator: Callable[[], InferSession],
        data: CellData,
        cell: CellSpec,
    ) -> list[DevPoint]:
        """Each snapshot's dev F1, in order; the model is left with the last (the final weights).
        `wall_s` adds the evaluations so far to the training time."""
        dev = dev_view(data)
        batches = make_batches_for_eval(dev, cell)
        curve, evaluating = [], 0.0
        for step, sentences, trained, weights in self.snapshots:
            t0 = time.perf_counter()
            model.load_state_dict(weights)
            _, scores = evaluate(evaluator(), dev, batches, cell.device)
            evaluating += time.perf_counter() - t0
            curve.append(DevPoint(step, sentences, trained, trained + evaluating, scores["f1"]))
        return curve


def curve_metrics(
    curve: Sequence[DevPoint], config: RunConfig, run_dir: Path, own_reference: bool
) -> dict:
    """The record's dev-F1 keys: the curve, its best, whether the run had converged, and with
    --target-f1 the time to reach it (`ref:` targets: of the run's reference's final dev F1, or
    of this cell's own when it is that reference)."""
    out = {
        "dev_f1_curve": [p.to_json() for p in curve],
        "dev_f1": curve[-1].f1,
        "best_dev_f1": max(p.f1 for p in curve),
        **convergence(curve),
    }
    if config.target_f1 is None:
        return out
    ref_dev = curve[-1].f1 if own_reference else reference_dev_f1(run_dir)
    target, how = resolve_target(config.target_f1, ref_dev)
    out.update(target_f1=target, target_f1_rule=how)
    if target is not None:
        out.update(time_to_target(curve, target))
    return out
