"""torchao precisions: who may run them, what each builds, what the record says; MLPerf anchor."""

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from accelbench.backends import quant
from accelbench.backends.quant import Recipe, Stack, capability
from accelbench.config.specs import RunConfig, cell_for, reference_cell_on
from accelbench.errors import UserError
from accelbench.measure.kernel_profile import cpu_matmul_ops
from accelbench.measure.kernels import classify, mode_verdict, summarize
from accelbench.report.mlperf import (
    REFERENCE_FILE,
    load_reference,
    matching,
    mlperf_blocks,
)

H100 = Stack("0.18.0", "2.11.0+cu130", True, (9, 0), "NVIDIA H100 80GB HBM3")
A100 = replace(H100, capability=(8, 0), gpu="NVIDIA A100-SXM4-80GB")
CPU_ONLY = Stack("0.18.0", "2.13.0+cpu", False, None, None)


@pytest.mark.parametrize(
    "workload,device,precision,stack,ok,needle",
    [
        ("infer", "cpu", "int8", CPU_ONLY, True, ""),
        ("serve", "cpu", "int8", CPU_ONLY, True, ""),
        ("infer", "cuda", "int8", H100, True, ""),
        ("train", "cpu", "int8", CPU_ONLY, False, "inference mode"),
        ("infer", "cpu", "fp8", CPU_ONLY, False, "compute capability >= 8.9"),
        ("train", "cpu", "fp8", CPU_ONLY, False, "not the CPU"),
        ("infer", "cuda", "fp8", A100, False, "A100-SXM4-80GB is 8.0"),
        ("train", "cuda", "fp8", A100, False, "compute capability >= 8.9"),
        ("infer", "cuda", "fp8", H100, True, ""),
        ("train", "cuda", "fp8", H100, True, ""),
        ("infer", "cuda", "fp8", replace(H100, capability=(8, 9)), True, ""),
        ("infer", "cuda", "fp8", CPU_ONLY, False, "no CUDA device"),
        ("infer", "cpu", "int4-weight", CPU_ONLY, False, "run on CUDA"),
        ("infer", "cuda", "int4-weight", H100, True, ""),
        ("train", "cuda", "int4-weight", H100, False, "inference mode"),
    ],
)
def test_capability_rules(workload, device, precision, stack, ok, needle):
    cap = capability(workload, device, precision, stack)
    assert cap.ok is ok
    assert needle in cap.reason
    assert bool(cap.reason) is not ok


@pytest.mark.parametrize(
    "stack,needle",
    [
        (replace(CPU_ONLY, torchao=None), "pip install 'accelbench[quant]'"),
        (replace(CPU_ONLY, torchao="0.17.0"), "torchao 0.17.0 is not the version"),
        (replace(CPU_ONLY, torchao="0.19.0"), ">=0.18,<0.19"),
        (replace(CPU_ONLY, torch="2.10.0"), "needs torch >= 2.11 (found 2.10.0)"),
    ],
)
def test_torchao_missing_or_unsupported_pair_is_unsupported_with_the_reason(stack, needle):
    cap = capability("infer", "cpu", "int8", stack)
    assert not cap.ok and needle in cap.reason


def test_rules_come_before_the_stack():
    """fp8 on the CPU says it needs a GPU even where torchao is missing."""
    cap = capability("infer", "cpu", "fp8", replace(CPU_ONLY, torchao=None))
    assert "8.9" in cap.reason


def test_modes_around_each_transform():
    assert quant.mode("int8", "cpu", "infer").weights is None  # fp32 around int8 matmuls
    assert quant.mode("int8", "cuda", "serve").weights is torch.bfloat16
    fp8_infer, fp8_train = quant.mode("fp8", "cuda", "infer"), quant.mode("fp8", "cuda", "train")
    assert fp8_infer.weights is torch.bfloat16 and fp8_infer.autocast is None
    assert fp8_train.autocast is torch.bfloat16 and fp8_train.weights is None
    assert fp8_train.train and not fp8_infer.train


def test_each_precision_builds_its_torchao_config():
    q = pytest.importorskip("torchao.quantization")
    from torchao.float8 import Float8LinearConfig

    assert isinstance(Recipe("int8", "infer").config(), q.Int8DynamicActivationInt8WeightConfig)
    rowwise = Recipe("fp8", "infer", "rowwise").config()
    assert isinstance(rowwise, q.Float8DynamicActivationFloat8WeightConfig)
    # torchao expands one granularity to (activation, weight)
    assert all(isinstance(g, q.PerRow) for g in rowwise.granularity)
    tensorwise = Recipe("fp8", "infer", "tensorwise").config()
    assert all(isinstance(g, q.PerTensor) for g in tensorwise.granularity)
    train = Recipe("fp8", "train", "rowwise").config()
    assert isinstance(train, Float8LinearConfig)
    assert train == Float8LinearConfig.from_recipe_name("rowwise")
    assert train != Recipe("fp8", "train", "tensorwise").config()
    int4 = Recipe("int4-weight", "infer").config()
    assert isinstance(int4, q.Int4WeightOnlyConfig) and int4.group_size == 128


def test_int8_converts_the_linears_the_kernels_take_and_records_it():
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 5))
    x = torch.randn(4, 16, 32)
    before = model(x)
    info = Recipe("int8", "infer").apply(model)
    assert info["linears_converted"] == 1 and info["linears_kept"] == ["2"]
    assert info["weight_types"] == ["Int8Tensor"]
    assert info["library"] == "torchao" and info["torchao"].startswith("0.18")
    assert "Int8DynamicActivationInt8WeightConfig" in info["api"]
    with torch.inference_mode():
        after = model(x)
    assert not torch.equal(after, before)  # quantized ...
    assert torch.allclose(after, before, atol=0.05)  # ... and close
    with torch.inference_mode():
        ops = cpu_matmul_ops(lambda: model(x))
    assert sum(n for op, n in ops.items() if op.startswith("aten::_int_mm")) == 1
    assert sum(n for op, n in ops.items() if op.startswith("aten::addmm")) == 1  # classifier


@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise"])
def test_fp8_training_swaps_linears_and_keeps_the_optimizers_parameters(recipe):
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 5))
    optimizer = torch.optim.AdamW(model.parameters())
    info = Recipe("fp8", "train", recipe).apply(model)
    assert info["converted_types"] == ["Float8Linear"] and info["linears_kept"] == ["1"]
    assert info["fp8_recipe"] == recipe
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.parameters()} == held
    before = model[0].weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp8 mode's autocast (CPU here)
        loss = model(torch.randn(4, 16, 32)).float().square().mean()
    loss.backward()
    optimizer.step()
    assert not torch.equal(model[0].weight, before)


def test_fp8_recipe_is_in_the_cell_and_the_record():
    config = RunConfig(precisions=("fp32", "fp8"), fp8_recipe="rowwise", devices="cuda")
    fp8 = cell_for(config, "infer", "eager", "cuda", "fp8", "dynamic")
    assert fp8.extra == (("fp8_recipe", "rowwise"),)
    tensorwise = cell_for(
        replace(config, fp8_recipe="tensorwise"), "infer", "eager", "cuda", "fp8", "dynamic"
    )
    assert tensorwise.cell_id != fp8.cell_id
    # other precisions keep the cell_id they had before fp8 recipes existed
    assert cell_for(config, "infer", "eager", "cuda", "fp32", "dynamic").extra == ()
    assert reference_cell_on(config, "cuda").extra == ()
    recipe = Recipe.for_cell("fp8", "serve", fp8.extra)
    assert recipe == Recipe("fp8", "infer", "rowwise")
    record = recipe.record()
    assert record["fp8_recipe"] == "rowwise" and "PerRow()" in record["api"]
    assert "from_recipe_name('rowwise')" in Recipe.for_cell("fp8", "train", fp8.extra).api
    assert "fp8_recipe" not in Recipe("int8", "infer").record()


def test_unknown_fp8_recipe_is_refused():
    with pytest.raises(UserError, match="unknown fp8-recipe 'blockwise'"):
        RunConfig(fp8_recipe="blockwise")


FP8_GEMM = "sm90_xmma_gemm_e4m3bf16_e4m3f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_cublas"
BF16_GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"


@pytest.mark.parametrize(
    "name,dtype",
    [
        (FP8_GEMM, "fp8"),
        ("nvjet_sm90_qqtst_128x256_64x4_2x1_v_bz_coopA_TNT", "fp8"),
        ("cutlass3x_sm90_tensorop_gemm_e4m3_e4m3_f32_bf16_bf16_128x128x128_1x1x1", "fp8"),
        ("triton_tem_fused__scaled_mm_0", "fp8"),
        ("sm80_xmma_gemm_i8i8_i32_f32_tn_n_tilesize128x128x64", "int8"),
        ("triton_tem_fused__int_mm_mul_1", "int8"),
    ],
)
def test_fp8_and_int8_gemms_are_named(name, dtype):
    cls = classify(name)
    assert (cls.kind, cls.tensor_core, cls.dtype) == ("gemm", True, dtype)


@pytest.mark.parametrize(
    "kernels,precision,effective",
    [
        ([(FP8_GEMM, 90.0), (BF16_GEMM, 10.0)], "fp8", True),
        ([(FP8_GEMM, 10.0), (BF16_GEMM, 90.0)], "fp8", False),
        ([(BF16_GEMM, 100.0)], "int8", False),
        ([("elementwise_kernel", 5.0)], "fp8", None),
        ([("triton_tem_fused_mm_0", 50.0)], "int8", None),  # a template that names no dtype
        ([("triton_tem_fused_mm_0", 50.0), (FP8_GEMM, 10.0)], "fp8", True),
    ],
)
def test_fp8_verdict_needs_fp8_gemm_time(kernels, precision, effective):
    ok, note = mode_verdict(summarize(kernels), precision)
    assert ok is effective
    if effective is False:
        assert note.startswith(f"{precision} claimed")


def test_mlperf_reference_file_names_its_sources():
    ref = load_reference()
    assert (ref["model"], ref["seq_len"], ref["division"]) == ("bert-large", 384, "closed")
    by = {r["round"]: r for r in ref["results"]}
    assert (by["v4.0"]["offline_samples_per_s"], by["v4.0"]["server_qps"]) == (9081.5, 6995.6)
    assert by["v4.1"]["offline_samples_per_s"] / by["v4.1"]["gpus"] == pytest.approx(9163.7, 0.01)
    assert all("mlcommons.org" in r["source"] for r in ref["results"])
    bench = REFERENCE_FILE.parents[3] / "bench" / "mlperf_bert_reference.json"
    assert json.loads(bench.read_text()) == ref


@pytest.mark.parametrize(
    "gpu,rounds",
    [
        ("NVIDIA H100 80GB HBM3", ["v4.0"]),
        ("NVIDIA H200", ["v4.1"]),
        ("NVIDIA H100 PCIe", []),
        (None, []),
    ],
)
def test_mlperf_anchor_matches_the_gpu_model(gpu, rounds):
    assert [r["round"] for r in matching(load_reference(), gpu)] == rounds


def _serve_frame(gpu: str) -> tuple[pd.DataFrame, list[dict]]:
    rows = [
        ("offline", "bf16", 800.0),
        ("offline", "fp8", 1200.0),
        ("server", "bf16", 600.0),
    ]
    df = pd.DataFrame(
        [
            {
                "workload": "serve",
                "device": "cuda",
                "status": "ok",
                "scenario": scenario,
                "scenario_value": value,
                "runtime": "eager",
                "precision": precision,
                "model": "bert-large",
                "seq_len": 384,
            }
            for scenario, precision, value in rows
        ]
    )
    return df, [{"env": {"gpu": gpu}} for _ in rows]


def test_mlperf_anchor_sits_beside_the_best_cell_and_says_what_it_is():
    from accelbench.report.markdown import to_markdown

    blocks = mlperf_blocks(*_serve_frame("NVIDIA H100 80GB HBM3"))
    text = to_markdown(blocks)
    assert "not like-for-like" in text and "TensorRT" in text and "SQuAD" in text
    table = blocks[-1]
    cells = [[c.text for c in row] for row in table.rows]
    assert cells[0][:3] == ["v4.0 1x H100-SXM-80GB", "offline", "9,082"]
    assert "fp8" in cells[0][3] and cells[0][4] == "1,200"  # the best offline cell
    assert cells[1][:3] == ["v4.0 1x H100-SXM-80GB", "server", "6,996"]
    assert mlperf_blocks(*_serve_frame("NVIDIA A100-SXM4-80GB")) == []


def test_mlperf_preset_is_bert_large_at_384_served_offline_and_server():
    from accelbench.api import config_of

    cfg = config_of({}, "mlperf-bert-large")
    assert (cfg.model, cfg.seq_lens, cfg.workloads) == ("bert-large", (384,), ("serve",))
    assert set(cfg.scenarios) == {"offline", "server"}
    assert set(cfg.precisions) == {"bf16", "fp16", "fp8", "int8"}
    assert cfg.devices == ("cuda",) and not cfg.synthetic  # serve cells score the test split
    assert cfg.latency_bound_ms == 130.0  # MLPerf's server bound for BERT


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's answer")
def test_mlperf_preset_plans_on_a_cpu_and_says_why_each_cell_needs_a_gpu():
    from accelbench.api import config_of
    from accelbench.runner.plan import plan_cells, probe

    planned = plan_cells(config_of({}, "mlperf-bert-large"))
    assert len(planned) == 16  # 2 runtimes x 4 precisions x 2 scenarios; no reference runs here
    for p in planned:
        ok, reason = probe(p.cell)
        assert not ok and "no CUDA device visible" in reason, (p.cell.label, reason)
