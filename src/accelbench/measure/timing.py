"""Timers and the timed loop: warm-up first, then min iterations AND min seconds.

Two clocks, for two questions:
- `IterationTimer` (throughput): on CUDA each iteration is bracketed by CUDA events, read after
  one final synchronize, so iterations queue back to back and nothing in the loop waits on the
  device; on CPU the work is synchronous and perf_counter is exact.
- `RequestTimer` (request latency): host time from the call to its result being ready, the
  device synchronized after every call, so host overhead (guards, graph bookkeeping, launches)
  is inside the figure as a caller would wait for it.

An iteration during which the runtime compiled (its `compiling_calls` counter moved) is left
out of the samples and counted: no timed sample holds compilation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Timer(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def samples(self) -> list[float]: ...


class IterationTimer:
    """Per-iteration durations in seconds: CUDA events on CUDA, the host clock on CPU."""

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


class RequestTimer:
    """Per-call request latency: host clock from the call until `sync` returned after it."""

    def __init__(self, sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter):
        self.sync, self.clock = sync, clock
        self._samples: list[float] = []
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = self.clock()

    def stop(self) -> None:
        self.sync()
        self._samples.append(self.clock() - self._t0)

    def samples(self) -> list[float]:
        return list(self._samples)


@dataclass
class TimedResult:
    samples_s: list[float]
    items: list[Any] = field(default_factory=list)
    warmup_iters: int = 0
    # items of the timed iterations left out because the runtime compiled during them
    dropped_items: list[Any] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(self.samples_s)

    @property
    def dropped(self) -> int:
        return len(self.dropped_items)


def warm_shapes(
    fn: Callable[[Any], Any], items: Sequence[Any], calls: int, key: Callable[[Any], Hashable]
) -> int:
    """Call fn `calls` times on one item of every distinct key (first-seen order); returns the
    number of calls made."""
    firsts: dict[Hashable, Any] = {}
    for item in items:
        firsts.setdefault(key(item), item)
    for item in firsts.values():
        for _ in range(calls):
            fn(item)
    return calls * len(firsts)


def timed_loop(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    device: str,
    warmup: int,
    min_iters: int,
    min_time: float,
    on_iter: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    timer: Timer | None = None,
    window: contextlib.AbstractContextManager | None = None,
    compiles: Callable[[], int] | None = None,
    sync: Callable[[], None] | None = None,
) -> TimedResult:
    """Call fn over `items` cyclically: `warmup` untimed calls, then until both minimums hold
    (counting kept iterations). `window` (e.g. telemetry) is entered when timing starts and
    left once the device finished; `compiles` reads the runtime's compiling-calls counter.
    `timer` and `sync` default to the device's (IterationTimer, synchronize)."""
    sync = sync or (lambda: synchronize(device))
    for i in range(warmup):
        fn(items[i % len(items)])
    sync()
    timer = timer or IterationTimer(device, clock)
    count = compiles or (lambda: 0)
    used: list[Any] = []
    compiled: list[bool] = []
    with window or contextlib.nullcontext():
        wall0 = clock()
        i = 0
        while len(used) - sum(compiled) < min_iters or clock() - wall0 < min_time:
            item = items[i % len(items)]
            before = count()
            timer.start()
            fn(item)
            timer.stop()
            compiled.append(count() != before)
            used.append(item)
            i += 1
            if on_iter:
                on_iter()
        sync()
    samples = timer.samples()
    kept = [k for k, c in enumerate(compiled) if not c]
    return TimedResult(
        [samples[k] for k in kept],
        [used[k] for k in kept],
        warmup,
        [used[k] for k, c in enumerate(compiled) if c],
    )
