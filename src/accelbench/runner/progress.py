"""Progress inside a cell, drawn by the parent: the cell process counts its steps or batches
into a pipe (runner/isolate.py hands it one when the parent listens) and the parent draws one
tqdm bar on its terminal: done, elapsed, rate and, where the total is known, the time left.
Nothing is drawn, and no pipe is opened, when the parent's stderr is not a terminal."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

MIN_INTERVAL_S = 0.2  # the cell reports at most this often


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    unit: str

    def encode(self) -> bytes:
        total = "-" if self.total is None else str(self.total)
        return f"{self.done} {total} {self.unit}\n".encode()

    @classmethod
    def decode(cls, line: str) -> Progress:
        done, total, unit = line.split()
        return cls(int(done), None if total == "-" else int(total), unit)


class Reporter:
    """Counts units of work in the cell process; writes to `fd` at most every MIN_INTERVAL_S
    (and the last unit), nothing when there is no fd."""

    def __init__(self, fd: int | None, total: int | None, unit: str) -> None:
        self.fd, self.total, self.unit = fd, total, unit
        self.done, self.sent = 0, 0.0

    def __call__(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        last = self.total is not None and self.done >= self.total
        if self.fd is None or (now - self.sent < MIN_INTERVAL_S and not last):
            return
        self.sent = now
        try:
            os.write(self.fd, Progress(self.done, self.total, self.unit).encode())
        except OSError:  # the parent is gone: the cell ends with it
            self.fd = None


# a terminal that reports no size (0 x 0, e.g. a fresh pseudo-terminal) still gets a bar: tqdm
# would draw none there
FALLBACK_SIZE = (100, 20)  # columns, rows


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


class Bar:
    """The parent's bar for the cell in flight: created on the first report, gone when closed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.shown = self.stream.isatty()
        self.bar = None

    def __call__(self, progress: Progress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            sized = _columns(self.stream) > 0
            self.bar = tqdm(
                total=progress.total,
                unit=progress.unit,
                leave=False,
                file=self.stream,
                dynamic_ncols=sized,
                ncols=None if sized else FALLBACK_SIZE[0],
                nrows=None if sized else FALLBACK_SIZE[1],
            )
        self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
