"""The out-of-memory backoff loop both executors (a process per cell, --in-process) share, with
attempts the test writes. No model, no process; the executors themselves run end to end in
test_isolation.py."""

from pathlib import Path

from accelbench.config.job import CellJob
from accelbench.config.specs import RunConfig
from accelbench.runner.executors import with_oom_backoff
from accelbench.runner.plan import plan_cells


def _job(tmp_path: Path, **options) -> CellJob:
    config = RunConfig(workloads="infer", precisions="fp32", **options)
    return CellJob(plan_cells(config)[0].cell, config, tmp_path)


def _fits_at(largest: int, seen: list[int]):
    def attempt(job: CellJob, log: Path) -> dict:
        seen.append(job.cell.batch_size)
        if job.cell.batch_size > largest:
            return {"status": "oom", "reason": "out of memory"}
        return {"status": "ok", "reason": "", "metrics": {"f1": 0.5}}

    return attempt


def test_oom_backoff_halves_the_batch_until_it_fits(tmp_path):
    seen: list[int] = []
    said: list[str] = []
    job = _job(tmp_path, oom_backoff=True)
    result = with_oom_backoff(job, _fits_at(4, seen), said.append)
    assert seen == [16, 8, 4]
    assert result["status"] == "ok"
    assert result["metrics"] == {"f1": 0.5, "batch_size_ran": 4}
    assert result["details"]["oom_backoff_tried"] == [16, 8, 4]
    assert said == [
        "  out of memory at batch 16: retrying at batch 8",
        "  out of memory at batch 8: retrying at batch 4",
    ]
    assert result["log"] == str(job.log_path.relative_to(tmp_path))


def test_without_backoff_an_oom_is_the_result(tmp_path):
    seen: list[int] = []
    result = with_oom_backoff(_job(tmp_path), _fits_at(4, seen), lambda line: None)
    assert seen == [16]
    assert result["status"] == "oom" and "batch_size_ran" not in result.get("metrics", {})


def test_backoff_stops_at_batch_1(tmp_path):
    seen: list[int] = []
    result = with_oom_backoff(_job(tmp_path, oom_backoff=True), _fits_at(0, seen), print)
    assert seen == [16, 8, 4, 2, 1]
    assert result["status"] == "oom"
    assert result["details"]["oom_backoff_tried"] == [16, 8, 4, 2, 1]


def test_a_marker_separates_a_second_attempt_in_the_log(tmp_path):
    job = _job(tmp_path, oom_backoff=True)
    job.log_path.parent.mkdir(parents=True)

    def attempt(j: CellJob, log: Path) -> dict:
        assert log == job.log_path  # every attempt's output in the cell's one log
        with log.open("a") as fh:
            fh.write(f"attempt at batch {j.cell.batch_size}\n")
        return {"status": "oom" if j.cell.batch_size > 8 else "ok", "reason": ""}

    with_oom_backoff(job, attempt, lambda line: None)
    log = job.log_path.read_text()
    assert log.index("attempt at batch 16") < log.index("out of memory at batch 16: again at")
    assert log.index("again at batch 8") < log.index("attempt at batch 8")
