"""The timing decisions on fakes: request latency, per-shape warm-up, compiling iterations left
out, the ceiling schedule."""

from __future__ import annotations

import pytest

from accelbench.config.specs import RunConfig
from accelbench.measure.ceilings import Schedule, per_call_s
from accelbench.measure.timing import IterationTimer, RequestTimer, timed_loop, warm_shapes
from accelbench.workloads.infer import time_inference
from helpers import FakeClock


def test_request_latency_waits_for_the_device_after_every_call():
    clock = FakeClock()
    queued = []

    def call(seconds: float) -> None:  # launches return at once; the device works later
        queued.append(seconds)

    def sync() -> None:  # the host waits for the queued work
        clock.t += sum(queued)
        queued.clear()

    timer = RequestTimer(sync, clock)
    result = timed_loop(call, [0.002, 0.005], "cpu", 0, 4, 0.0, clock=clock, timer=timer, sync=sync)
    assert result.samples_s == pytest.approx([0.002, 0.005, 0.002, 0.005])


def test_back_to_back_timer_does_not_wait_for_the_device():
    clock = FakeClock()
    synced = []
    result = timed_loop(
        lambda _: None, [1], "cpu", 0, 3, 0.0, clock=clock, sync=lambda: synced.append(1)
    )
    assert len(result.samples_s) == 3
    assert synced == [1, 1]  # after the warm-up and after the loop, never per iteration


def test_iterations_that_compiled_are_left_out_and_counted():
    compiles = {"n": 0}

    def call(item: str) -> None:
        if item == "new":
            compiles["n"] += 1

    items = ["a", "new", "b"]
    clock = FakeClock(tick=1.0)
    result = timed_loop(call, items, "cpu", 0, 4, 0.0, clock=clock, compiles=lambda: compiles["n"])
    assert result.dropped == 2 and result.dropped_items == ["new", "new"]
    assert "new" not in result.items
    assert len(result.items) == 4  # the minimum counts kept iterations only
    assert len(result.samples_s) == len(result.items)


def test_warm_shapes_calls_each_distinct_key_n_times_in_first_seen_order():
    calls = []
    made = warm_shapes(calls.append, ["a1", "b1", "a2", "c1"], 3, key=lambda s: s[0])
    assert made == 9
    assert calls == ["a1"] * 3 + ["b1"] * 3 + ["c1"] * 3


class Batch:
    def __init__(self, rows: int, width: int) -> None:
        self.signature = (rows, width, True)
        self.size, self.real_tokens = rows, rows * width


class FakeSession:
    """Records every call and whether the timed loop had started (first clock read)."""

    compiling_calls = 0

    def __init__(self, warm_calls: int) -> None:
        self.warm_calls = warm_calls
        self.calls: list[tuple[tuple, bool]] = []
        self.timing = False

    def logits(self, batch: Batch) -> None:
        self.calls.append((batch.signature, self.timing))


@pytest.mark.parametrize("warm_calls", [1, 3])
def test_every_shape_is_called_warm_calls_times_before_the_timer_starts(warm_calls):
    session = FakeSession(warm_calls)
    items = [Batch(16, w) for w in (12, 20, 12, 33, 20)] + [Batch(5, 20)]

    ticks = FakeClock(tick=1.0)

    def clock() -> float:
        session.timing = True
        return ticks()

    config = RunConfig(warmup_iters=1, min_iters=1, min_time=1e-6)
    throughput, latency = time_inference(session, items, "cpu", config, clock=clock)
    assert latency is None  # CPU: the one loop is the request latency too
    before = [sig for sig, timing in session.calls if not timing]
    for batch in items:
        assert before.count(batch.signature) >= warm_calls
    assert len(throughput.samples_s) == 2 * len(items)  # at least two passes over the batches


def test_ceiling_warms_up_a_second_then_times_blocks_of_back_to_back_calls():
    clock = FakeClock()
    calls, syncs = [], []

    def fn() -> None:  # 10 ms of work per call
        calls.append(clock.t)
        clock.t += 0.01

    schedule = Schedule(warmup_s=1.0, block_s=0.1, blocks=5)
    per_call = per_call_s(
        fn, lambda: syncs.append(len(calls)), lambda: IterationTimer("cpu", clock), schedule, clock
    )
    assert per_call == pytest.approx(0.01)
    warmup_calls = 100  # 1 s of 10 ms calls, each synchronized
    assert syncs[:warmup_calls] == list(range(1, warmup_calls + 1))
    assert len(calls) == warmup_calls + 5 * 10  # 5 blocks of 10 calls, no sync inside a block
    assert syncs[warmup_calls:] == [len(calls)]


@pytest.mark.parametrize(
    "probe_s,size",
    [
        (0.001, 1536),  # 1536³ predicted at 216 x 1 ms: within MAX_CALL_S, kept
        (0.002, 768),  # 432 ms predicted: halved once (54 ms)
        (1.0, 384),  # halved while over, but never below the probe's square
    ],
)
def test_the_size_probe_halves_the_square_while_a_call_would_be_too_long(probe_s, size):
    """The probe call's time (a fake clock: `probe_s` between its two reads) scaled by n³."""
    from accelbench.measure import ceilings

    assert (ceilings.SIZES["cpu"], ceilings.PROBE_SIZE, ceilings.MAX_CALL_S) == (1536, 256, 0.25)
    assert ceilings.matmul_size("cpu", "float32", clock=FakeClock(tick=probe_s)) == size


def test_an_emulated_dtype_is_measured_on_a_smaller_square(monkeypatch):
    """A matmul dtype whose 1536³ call would take seconds (bf16 emulated on a CPU without BF16
    instructions) gets a smaller square; a fast one keeps its size, and the record says which
    size each figure comes from."""
    from accelbench.measure import ceilings

    monkeypatch.setattr(
        ceilings, "matmul_size", lambda device, key: 192 if key == "bfloat16" else 1536
    )
    monkeypatch.setattr(ceilings, "_time", lambda fn, device: 1.0)
    out = ceilings.measure("cpu", ("float32", "bfloat16"))
    assert out["matmul_sizes"] == {"bfloat16": 192}
    assert out["matmul_tflops"]["bfloat16"] == 2 * 192**3 / 1e12
    assert out["matmul_tflops"]["float32"] == 2 * 1536**3 / 1e12
