from dataclasses import replace

import pytest

from accelbench.config.specs import AUTO_BATCH, CellSpec, RunConfig, expand, reference_cell_on
from accelbench.errors import UserError


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


def test_grad_accum_is_a_cell_of_its_own():
    cell = expand(RunConfig(workloads=("train",)))[0]
    accumulated = expand(RunConfig(workloads=("train",), grad_accum=4))[0]
    assert accumulated.cell_id != cell.cell_id and accumulated.label.endswith("b16x4 s128")
    assert "grad_accum" not in cell.to_json() and accumulated.to_json()["grad_accum"] == 4


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
        ({"precisions": ("fp4",)}, "unknown precision 'fp4'"),
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


def test_one_process_cells_keep_the_cell_id_they_had_before_nproc():
    cell = CellSpec(
        workload="train",
        runtime="eager",
        device="cpu",
        precision="fp32",
        padding="dynamic",
        batch_size=16,
        seq_len=128,
        model="bundled",
        dataset="bundled",
        seed=42,
        synthetic=False,
        train_steps=300,
    )
    assert cell.cell_id == "4ca516e2922ebb63"  # the id this spec had before CellSpec.nproc
    assert "nproc" not in cell.to_json()
    two = replace(cell, nproc=2)
    assert two.to_json()["nproc"] == 2
    assert two.cell_id != cell.cell_id
    assert two.label.endswith(" x2") and not cell.label.endswith("x1")
    assert CellSpec(**two.to_json()) == two and CellSpec(**cell.to_json()) == cell


def test_process_counts_multiply_train_cells_only():
    cells = expand(RunConfig(nprocs=(1, 2), precisions=("fp32",)))
    assert [(c.workload, c.nproc) for c in cells] == [("train", 1), ("train", 2), ("infer", 1)]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"nprocs": (0,)}, "--nproc must be positive"),
        ({"nprocs": ()}, "--nproc is empty"),
        ({"nprocs": (2,), "workloads": ("infer",)}, "distributes training only"),
        ({"dist_timeout": 0}, "--dist-timeout must be positive"),
        ({"nprocs": (2,), "batch_sizes": (AUTO_BATCH,)}, "give the per-rank batch size"),
    ],
)
def test_bad_process_settings(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        RunConfig(**kwargs)


@pytest.mark.parametrize("sizes", [("auto", 32, 8), (32, "auto", 8), (32, 8, "auto")])
def test_auto_in_any_position_of_a_list_is_a_cell_of_its_own(sizes):
    cells = expand(RunConfig(batch_sizes=sizes, workloads="infer", precisions="fp32"))
    assert [c.batch_size for c in cells] == list(sizes)
    assert [c.auto_batch for c in cells] == [b == AUTO_BATCH for b in sizes]
    assert len({c.cell_id for c in cells}) == 3


def test_zero_is_not_auto():
    with pytest.raises(UserError, match="--batch-size must be positive, got 0"):
        RunConfig(batch_sizes=(0, 32))


def test_serve_cells_one_per_scenario_after_train_and_infer():
    cells = expand(RunConfig(workloads=("serve", "infer"), precisions=("fp32",)))
    assert [(c.workload, c.scenario) for c in cells] == [
        ("infer", None),
        ("serve", "single-stream"),
        ("serve", "server"),
        ("serve", "offline"),
    ]
    serve = cells[1:]
    assert len({c.cell_id for c in cells}) == 4
    assert all(c.checkpoint == "run-reference" and c.train_steps is None for c in serve)
    assert serve[1].label == "serve eager cpu fp32 dynamic b16 s128 server"
    assert serve[1].to_json()["scenario"] == "server" and "scenario" not in cells[0].to_json()
    assert CellSpec(**serve[1].to_json()) == serve[1]


def test_scenarios_expand_serve_cells_only():
    cfg = RunConfig(workloads=("train", "infer", "serve"), scenarios=("server",))
    assert [(c.workload, c.scenario) for c in expand(cfg) if c.precision == "fp32"] == [
        ("train", None),
        ("infer", None),
        ("serve", "server"),
    ]
    plain = {c.cell_id for c in expand(RunConfig())}
    assert plain <= {c.cell_id for c in expand(cfg)}  # train and infer cells keep their ids


def test_latency_bound_defaults_per_device():
    assert RunConfig().latency_bound("cpu") == 50.0
    assert RunConfig().latency_bound("cuda") == 10.0
    assert RunConfig(latency_bound_ms=20).latency_bound("cuda") == 20.0


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"scenarios": ("multi-stream",)}, "unknown scenario 'multi-stream'"),
        ({"scenarios": ()}, "--scenarios is empty"),
        ({"latency_bound_ms": 0}, "--latency-bound-ms must be positive"),
        ({"serve_min_time": -1}, "--serve-min-time must be positive"),
        ({"serve_min_queries": 0}, "--serve-min-queries must be positive"),
        ({"serve_max_wait_ms": -0.5}, "--serve-max-wait-ms must be >= 0"),
        ({"workloads": ("serve",), "synthetic": True}, "drop --synthetic"),
        ({"workloads": ("serve",), "batch_sizes": (AUTO_BATCH,)}, "give a number"),
    ],
)
def test_bad_serve_settings(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        RunConfig(**kwargs)


def test_serve_only_runs_plan_the_reference_fine_tune():
    from accelbench.config.job import Role
    from accelbench.runner.plan import needs_reference, plan_cells

    first, *rest = plan_cells(RunConfig(workloads=("serve",), precisions=("bf16",)))
    assert (first.cell.workload, first.role) == ("train", Role.REFERENCE)
    assert rest and all(needs_reference(p.cell) for p in rest)
