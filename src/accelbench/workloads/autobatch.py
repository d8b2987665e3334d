"""`--batch-size auto`: the largest batch that fits and still raises throughput.

Starting at START, the batch doubles while each doubling raises sentences/s by at least
MIN_GAIN; it stops at the first out-of-memory, at the first doubling that gains less, or at the
cap (the data's size, at most MAX_BATCH). An out-of-memory at the very start halves down to 1.
Every trial is kept for the record. Trials run before the cell's own warm-up and timed loop,
on the cell's runtime, device and precision, so the choice is made by the hardware at hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from accelbench.measure.timing import synchronize

START = 8
MAX_BATCH = 4096
MIN_GAIN = 1.05
TRIAL_ITERS = 3
TRIAL_MIN_S = 0.5


class OutOfMemory(RuntimeError):
    """No batch fits: reported as the cell's `oom` status."""


# what device out-of-memory errors say: CUDA and torch ("CUDA out of memory", "CUDA error: out
# of memory"), ONNX Runtime's BFC arena ("... Failed to allocate memory for requested buffer of
# size N"), cuBLAS failing its workspace (CUBLAS_STATUS_ALLOC_FAILED)
OOM_MESSAGES = ("out of memory", "failed to allocate memory", "cublas_status_alloc_failed")


def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError | OutOfMemory):
        return True
    return any(m in str(exc).lower() for m in OOM_MESSAGES)


def free_device_cache(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


@dataclass(frozen=True)
class Trial:
    batch: int
    samples_per_s: float | None  # None: out of memory
    status: str


@dataclass(frozen=True)
class Search:
    chosen: int
    trials: tuple[Trial, ...]
    stopped: str

    def to_json(self) -> dict:
        return {
            "chosen": self.chosen,
            "stopped": self.stopped,
            "min_gain": MIN_GAIN,
            "trials": [asdict(t) for t in self.trials],
        }


def search(measure: Callable[[int], float], cap: int, device: str) -> Search:
    """Run `measure(batch) -> sentences/s` over doubling batches and pick one (see above)."""
    cap = max(1, min(cap, MAX_BATCH))
    trials: list[Trial] = []
    best: Trial | None = None
    batch = min(START, cap)
    while True:
        try:
            rate: float | None = measure(batch)
        except Exception as exc:
            if not is_oom(exc):
                raise
            rate = None
        free_device_cache(device)  # outside the except block: the traceback is gone by now
        if rate is None:
            trials.append(Trial(batch, None, "oom"))
            if best is None and batch > 1:
                batch //= 2
                continue
            if best is None:
                raise OutOfMemory("out of memory even at batch 1")
            stopped = f"out of memory at batch {batch}"
            break
        trials.append(Trial(batch, rate, "ok"))
        if best is not None and rate < best.samples_per_s * MIN_GAIN:
            stopped = f"batch {batch} gained less than {MIN_GAIN - 1:.0%} over {best.batch}"
            break
        best = trials[-1]
        if len(trials) > 1 and trials[-2].status == "oom":  # found by halving from the start
            stopped = "largest batch below the first out-of-memory"
            break
        if batch >= cap:
            stopped = f"reached the cap of {cap} (data size or {MAX_BATCH})"
            break
        batch = min(batch * 2, cap)
    return Search(best.batch, tuple(trials), stopped)


def rate(run_once: Callable[[], int], device: str) -> float:
    """Sentences/s of `run_once` (returns the sentences it processed): one warm-up call, then
    at least TRIAL_ITERS calls and TRIAL_MIN_S seconds."""
    run_once()
    synchronize(device)
    sentences, calls, t0 = 0, 0, time.perf_counter()
    while calls < TRIAL_ITERS or time.perf_counter() - t0 < TRIAL_MIN_S:
        sentences += run_once()
        calls += 1
    synchronize(device)
    return sentences / (time.perf_counter() - t0)
