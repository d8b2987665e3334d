"""--batch-size auto: the search rule on a fake device, then real auto cells end to end."""

import pytest
import torch

from accelbench.cli import main
from accelbench.config.specs import AUTO_BATCH
from accelbench.workloads import autobatch
from helpers import read_records, tiny_argv


def fake(rates: dict[int, float], oom_from: int | None = None):
    """sentences/s per batch; an out-of-memory error from `oom_from` up."""
    asked: list[int] = []

    def measure(batch: int) -> float:
        asked.append(batch)
        if oom_from is not None and batch >= oom_from:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return rates[batch]

    return measure, asked


def test_doubles_while_throughput_rises_and_keeps_the_last_real_gain():
    measure, asked = fake({8: 100, 16: 190, 32: 300, 64: 310, 128: 900})
    found = autobatch.search(measure, cap=4096, device="cpu")
    assert asked == [8, 16, 32, 64]  # 64 gains 3 %: stop there, 128 is never tried
    assert found.chosen == 32
    assert "gained less than 5%" in found.stopped


def test_stops_below_the_first_out_of_memory():
    measure, asked = fake({8: 100, 16: 200, 32: 400}, oom_from=64)
    found = autobatch.search(measure, cap=4096, device="cpu")
    assert (found.chosen, asked) == (32, [8, 16, 32, 64])
    assert [t.status for t in found.trials] == ["ok", "ok", "ok", "oom"]
    assert found.trials[-1].samples_per_s is None


def test_out_of_memory_at_the_start_halves_down():
    measure, asked = fake({1: 10, 2: 20, 4: 40}, oom_from=8)
    found = autobatch.search(measure, cap=4096, device="cpu")
    assert (found.chosen, asked) == (4, [8, 4])


def test_nothing_fits_is_an_oom_and_other_errors_pass_through():
    measure, _ = fake({}, oom_from=1)
    with pytest.raises(autobatch.OutOfMemory) as err:
        autobatch.search(measure, cap=4096, device="cpu")
    assert autobatch.is_oom(err.value)

    def broken(batch: int) -> float:
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        autobatch.search(broken, cap=4096, device="cpu")


def test_the_cap_ends_the_search_on_a_size_that_is_not_a_power_of_two():
    measure, asked = fake({8: 1, 16: 2, 32: 4, 48: 8})
    found = autobatch.search(measure, cap=48, device="cpu")
    assert (found.chosen, asked) == (48, [8, 16, 32, 48])
    assert "cap of 48" in found.stopped


@pytest.mark.slow
def test_auto_cells_run_with_the_batch_they_found(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--precisions", "fp32", "--batch-size", "auto")
    argv += ["--threads", "1", "--train-steps", "6", "--eval-limit", "40", "--min-iters", "2"]
    argv += ["--in-process"]  # what is tested is the search, not the isolation
    assert main(argv) == 0
    recs = read_records(out)
    auto = [r for r in recs if r["spec"]["batch_size"] == AUTO_BATCH]
    reference = [r for r in recs if r["role"] == "reference"]
    assert [r["spec"]["batch_size"] for r in reference] == [16]  # an explicit batch
    assert {r["spec"]["workload"] for r in auto} == {"train", "infer"}
    for rec in auto:
        assert rec["status"] == "ok", rec["reason"]
        assert "bauto" in rec["label"]
        search = rec["details"]["batch_search"]
        ok = [t for t in search["trials"] if t["status"] == "ok"]
        assert ok and all(t["samples_per_s"] > 0 for t in ok)
        assert rec["metrics"]["batch_size_ran"] == search["chosen"]
        assert search["chosen"] in [t["batch"] for t in ok]
    infer = next(r for r in auto if r["spec"]["workload"] == "infer")
    assert max(t["batch"] for t in infer["details"]["batch_search"]["trials"]) <= 40
    assert infer["metrics"]["f1"] is not None
    assert main(["report", str(out)]) == 0
    train = next(r for r in auto if r["spec"]["workload"] == "train")
    # the train table has the b16 reference and the auto cell, so batch is a column there
    assert f"| auto ({train['metrics']['batch_size_ran']}) |" in (out / "report.md").read_text()
