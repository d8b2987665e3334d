"""Timers and the timed loop: warm-up first, then min iterations AND min seconds.

On CUDA each iteration is bracketed by CUDA events, read after one final synchronize, so nothing
inside the loop waits on the device. On CPU the work is synchronous and perf_counter is exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class IterationTimer:
    """Collects per-iteration durations in seconds."""

    def __init__(self, device: str, clock: Callable[[], float] = time.perf_counter) -> None:
        self.cuda = device == "cuda"
        self.clock = clock
        self._events: list[tuple[Any, Any]] = []
        self._host: list[float] = []
        self._t0 = 0.0

    def start(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self._events.append((ev, None))
        else:
            self._t0 = self.clock()

    def stop(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self._events[-1] = (self._events[-1][0], ev)
        else:
            self._host.append(self.clock() - self._t0)

    def samples(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1e3 for a, b in self._events]
        return list(self._host)


@dataclass
class TimedResult:
    samples_s: list[float]
    items: list[Any] = field(default_factory=list)
    warmup_iters: int = 0

    @property
    def total_s(self) -> float:
        return sum(self.samples_s)


def timed_loop(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    device: str,
    warmup: int,
    min_iters: int,
    min_time: float,
    on_iter: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TimedResult:
    """Call fn over `items` cyclically: `warmup` untimed calls, then until both minimums hold."""
    for i in range(warmup):
        fn(items[i % len(items)])
    synchronize(device)
    timer = IterationTimer(device, clock)
    used: list[Any] = []
    wall0 = clock()
    i = 0
    while i < min_iters or clock() - wall0 < min_time:
        item = items[i % len(items)]
        timer.start()
        fn(item)
        timer.stop()
        used.append(item)
        i += 1
        if on_iter:
            on_iter()
    return TimedResult(timer.samples(), used, warmup)
