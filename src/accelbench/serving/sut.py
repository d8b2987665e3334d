"""The Query Sample Library and System Under Test that serve cells hand to MLPerf LoadGen.

The library holds the test split, tokenized once; LoadGen's load callback puts the samples it
names on the cell's device. The SUT answers each sample with its per-word predicted label ids,
so batching and padding cannot change what is scored. Single-stream and offline queries run
in LoadGen's issuing thread, the one that starts the test; server queries are queued and a
batching thread forms batches dynamically: the largest batch, up to `max_batch`, that arrives
within `max_wait_s` of the oldest queued query. All of a SUT's inference runs in one thread
(`on_inference_thread`): compiled graphs and CUDA graphs are warmed up where they are replayed.

A session that raises does not stop LoadGen: the first exception is kept, every query from then
on is answered at once with no data, and `raise_if_failed` re-raises it after the test.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import mlperf_loadgen as lg
import numpy as np
import torch

from accelbench.backends.base import InferSession
from accelbench.data.encode import Batch, Encoded, padded_width
from accelbench.measure.loadgen_log import RESPONSE_DTYPE

T = TypeVar("T")


class SampleLibrary:
    """The test split on the cell's device, as LoadGen loads and unloads it."""

    def __init__(self, enc: Encoded, device: str, pad_id: int, padding: str, seq_len: int):
        self.enc, self.device, self.pad_id = enc, device, pad_id
        self.padding, self.seq_len = padding, seq_len
        self.loaded: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.enc)

    def load(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded[i] = torch.tensor(self.enc.input_ids[i], device=self.device)

    def unload(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded.pop(i, None)

    def batch(self, indices: Sequence[int]) -> Batch:
        """The loaded samples `indices`, padded on the device by the cell's padding policy."""
        rows = [self.loaded[i] for i in indices]
        width = padded_width(max(len(r) for r in rows), self.padding, self.seq_len)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return Batch(ids, mask, None, tuple(indices), sum(len(r) for r in rows))


@dataclass
class ServeStats:
    """What the SUT served during one LoadGen test."""

    batch_sizes: list[int] = field(default_factory=list)
    service_s: list[float] = field(default_factory=list)  # per batch: inference to completion
    real_tokens: int = 0

    def to_json(self) -> dict:
        sizes = np.asarray(self.batch_sizes or [0])
        busy = np.asarray(self.service_s or [0.0]) * 1e3
        return {
            "batches": len(self.batch_sizes),
            "mean_batch": float(sizes.mean()),
            "max_batch_formed": int(sizes.max()),
            "service_ms_mean": float(busy.mean()),
            "service_ms_p99": float(np.percentile(busy, 99)),
            "tokens_per_sample": self.real_tokens / max(1, int(sizes.sum())),
        }


class Sut:
    """LoadGen's System Under Test around an inference session."""

    def __init__(
        self,
        session: InferSession,
        library: SampleLibrary,
        scenario: str,
        max_batch: int,
        max_wait_s: float,
    ) -> None:
        self.session, self.library, self.scenario = session, library, scenario
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.stats = ServeStats()
        self.error: Exception | None = None
        self._queue: collections.deque[tuple[float, lg.QuerySample]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        # server: the one thread that runs every inference, warm-up and batches alike
        self._thread = (
            ThreadPoolExecutor(1, thread_name_prefix="serve-batcher")
            if scenario == "server"
            else None
        )

    def on_inference_thread(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in the thread this SUT infers in (server: its batching thread)."""
        if self._thread is None:
            return fn(*args)
        return self._thread.submit(fn, *args).result()

    def predict(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Per sample, the label id of each kept word's first subword."""
        pred = self.session.logits(self.library.batch(indices)).argmax(-1).cpu().numpy()
        first = self.library.enc.first_subword
        return [
            np.ascontiguousarray(pred[row, list(first[i])], dtype=RESPONSE_DTYPE)
            for row, i in enumerate(indices)
        ]

    def _run(self, samples: Sequence[lg.QuerySample]) -> None:
        """Answer `samples` (one batch); never raises into LoadGen."""
        t0 = time.perf_counter()
        answers: list[np.ndarray] | None = None
        if self.error is None:
            try:
                answers = self.predict([s.index for s in samples])
            except Exception as exc:  # kept for after the test; LoadGen must still finish
                self.error = exc
        if answers is None:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])
            return
        lg.QuerySamplesComplete(
            [
                lg.QuerySampleResponse(s.id, a.ctypes.data, a.nbytes)
                for s, a in zip(samples, answers, strict=True)
            ]
        )
        self.stats.service_s.append(time.perf_counter() - t0)
        self.stats.batch_sizes.append(len(samples))
        self.stats.real_tokens += sum(len(self.library.enc.input_ids[s.index]) for s in samples)

    def issue(self, samples: Sequence[lg.QuerySample]) -> None:
        """LoadGen's IssueQuery callback."""
        if self.scenario == "server":
            now = time.monotonic()
            with self._cond:
                self._queue.extend((now, s) for s in samples)
                self._cond.notify()
            return
        order = list(samples)
        if self.library.padding == "bucket":  # like lengths together, as the policy means
            order.sort(key=lambda s: len(self.library.enc.input_ids[s.index]))
        for start in range(0, len(order), self.max_batch):
            self._run(order[start : start + self.max_batch])

    def flush(self) -> None:
        """LoadGen's FlushQueries callback: nothing is held back, so nothing to flush."""

    def _take(self) -> list[lg.QuerySample] | None:
        """The next server batch: wait for a query, then up to max_wait_s after the oldest
        queued one for the batch to fill."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = self._queue[0][0] + self.max_wait_s
            while len(self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._queue))
            return [self._queue.popleft()[1] for _ in range(n)]

    def _serve(self) -> None:
        while (batch := self._take()) is not None:
            self._run(batch)

    def _load(self, indices: Sequence[int]) -> None:
        """LoadGen's load callback; an error is kept like the session's (see _run)."""
        try:
            self.library.load(indices)
        except Exception as exc:
            self.error = self.error or exc

    def reset_stats(self) -> ServeStats:
        """Start counting a new test; returns the counts of the one before."""
        done, self.stats = self.stats, ServeStats()
        return done

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    @contextlib.contextmanager
    def handles(self) -> Iterator[tuple[int, int]]:
        """LoadGen's SUT and QSL handles for this SUT and its library; the server's batching
        loop runs while they exist and has ended before they are destroyed."""
        loop = None if self._thread is None else self._thread.submit(self._serve)
        sut = lg.ConstructSUT(self.issue, self.flush)
        n = len(self.library)
        qsl = lg.ConstructQSL(n, n, self._load, self.library.unload)
        try:
            yield sut, qsl
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if loop is not None:
                loop.result()
                self._thread.shutdown()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
