"""How close the server QPS search comes to the queueing model's prediction: a session that
sleeps a known service time per query, batching off (an M/D/1 queue), under real LoadGen.

    python bench/serve_queueing.py [--service-ms 2] [--bound-ms 20] [--repeats 3]

Prints, per search, the highest VALID target, the M/D/1 prediction at the bound from the
service times the SUT recorded, and their ratio. The ratio falls when other work shares the
cores (scheduling delays the model does not have): run it on an otherwise idle machine.
tests/test_serve_loadgen.py checks only what holds under any load (the ratio's ceiling).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from accelbench.serving.qps_search import ServerSearch, best
from accelbench.serving.sut import Sut
from test_serve_loadgen import MIN_QUERIES, SleepSession, library, md1_qps_at_p99


def one_search(service_s: float, bound_ms: float, work: Path) -> tuple[float, float]:
    """(highest VALID target QPS, M/D/1 prediction at the bound)."""
    sut = Sut(SleepSession(service_s), library(), "server", max_batch=1, max_wait_s=0.0)
    with sut.handles() as handles:
        search = ServerSearch(sut, handles, bound_ms, 0.5, MIN_QUERIES, 0, work / "perf", work)
        trials, _ = search.run(start_qps=100.0, floor_qps=10.0)
    top = best(trials)
    measured = np.mean([t.served["service_ms_mean"] for t in trials]) / 1e3
    return (top.target_qps if top else 0.0), md1_qps_at_p99(measured, bound_ms / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-ms", type=float, default=2.0)
    parser.add_argument("--bound-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("search VALID QPS  M/D/1 prediction  ratio")
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory() as work:
            found, predicted = one_search(args.service_ms / 1e3, args.bound_ms, Path(work))
        print(f"{k:6d} {found:10.1f} {predicted:17.1f} {found / predicted:6.2f}")


if __name__ == "__main__":
    main()
