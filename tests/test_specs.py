import dataclasses
import hashlib
import json

import pytest

from accelbench.errors import UserError
from accelbench.specs import AUTO_BATCH, LATER_FIELDS, RunConfig, expand, reference_cell_on


def test_matrix_is_the_product_train_first():
    cfg = RunConfig(
        workloads=("infer", "train"), precisions=("fp32", "bf16"), paddings=("dynamic", "pad-max")
    )
    cells = expand(cfg)
    assert len(cells) == 2 * 2 * 2
    assert [c.workload for c in cells[:4]] == ["train"] * 4
    assert len({c.cell_id for c in cells}) == len(cells)


def test_cell_id_is_stable_and_depends_on_the_spec():
    a = expand(RunConfig())[0]
    assert a.cell_id == expand(RunConfig())[0].cell_id
    assert a.cell_id != expand(RunConfig(batch_sizes=(8,)))[0].cell_id
    assert len(a.cell_id) == 16


def test_cell_id_of_a_cell_without_later_fields_is_the_one_earlier_releases_wrote():
    cell = expand(RunConfig())[0]
    earlier = {k: v for k, v in dataclasses.asdict(cell).items() if k not in LATER_FIELDS}
    blob = json.dumps(earlier, sort_keys=True, separators=(",", ":"))
    assert cell.cell_id == hashlib.sha256(blob.encode()).hexdigest()[:16]
    accumulated = expand(RunConfig(workloads=("train",), grad_accum=4))[0]
    assert accumulated.cell_id != cell.cell_id and accumulated.label.endswith("b16x4 s128")


def test_grad_accum_applies_to_train_cells_only():
    cells = expand(RunConfig(grad_accum=2))
    assert {(c.workload, c.grad_accum) for c in cells} == {("train", 2), ("infer", 1)}


def test_auto_batch_cells_and_the_reference_keeps_an_explicit_batch():
    cfg = RunConfig(batch_sizes=(AUTO_BATCH, 32))
    assert {c.label.split()[-2] for c in expand(cfg)} == {"bauto", "b32"}
    assert reference_cell_on(cfg, "cpu").batch_size == 32
    assert reference_cell_on(RunConfig(batch_sizes=(AUTO_BATCH,)), "cpu").batch_size == 16


def test_reference_is_fp32_eager_on_first_device():
    ref = reference_cell_on(RunConfig(devices=("cuda", "cpu"), precisions=("bf16",)), "cuda")
    assert (ref.workload, ref.runtime, ref.device, ref.precision) == (
        "train",
        "eager",
        "cuda",
        "fp32",
    )


def test_synthetic_cells_use_fixed_shapes():
    cells = expand(RunConfig(synthetic=True, paddings=("dynamic", "bucket")))
    assert {c.padding for c in cells} == {"pad-max"}
    assert {c.dataset for c in cells} == {"synthetic"}


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"runtimes": ("tensorflow",)}, "unknown runtime 'tensorflow'"),
        ({"devices": ("tpu",)}, "unknown device 'tpu'"),
        ({"precisions": ("fp8",)}, "unknown precision 'fp8'"),
        ({"paddings": ("left",)}, "unknown padding 'left'"),
        ({"batch_sizes": (-2,)}, "--batch-size must be positive"),
        ({"batch_sizes": ()}, "--batch-size is empty"),
        ({"seq_lens": (128, 4)}, "--seq-len must be between"),
        ({"workloads": ()}, "--workloads is empty"),
    ],
)
def test_bad_config_names_the_problem(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        RunConfig(**kwargs)


def test_batch_and_seq_sweeps_give_one_cell_per_value():
    cfg = RunConfig(
        workloads=("infer",), precisions=("fp32",), batch_sizes=(8, 32), seq_lens=(64, 128)
    )
    cells = expand(cfg)
    assert {(c.batch_size, c.seq_len) for c in cells} == {(8, 64), (8, 128), (32, 64), (32, 128)}
    single = expand(RunConfig(workloads=("infer",), precisions=("fp32",), batch_sizes=(32,)))
    assert single[0].cell_id in {
        c.cell_id
        for c in expand(RunConfig(workloads=("infer",), precisions=("fp32",), batch_sizes=(8, 32)))
    }
    assert reference_cell_on(cfg, "cpu").batch_size == 8


def test_run_json_from_before_sweeps_still_loads():
    old = {**RunConfig().to_json(), "batch_size": 16, "seq_len": 64}
    del old["batch_sizes"], old["seq_lens"]
    cfg = RunConfig.from_json(old)
    assert (cfg.batch_sizes, cfg.seq_lens) == ((16,), (64,))


def test_round_trip_json():
    cfg = RunConfig(precisions=("fp32",), eval_limit=10)
    assert RunConfig.from_json(cfg.to_json()) == cfg
