import math

import numpy as np
import pytest

from accelbench.measure import flops
from accelbench.measure.stats import bootstrap_ratio, per_unit_cv, repeat_cv, summarize, verdict
from helpers import FakeClock


def test_summarize_known_samples():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0], scale=1000)
    assert s["n"] == 5
    assert s["median"] == 3000
    assert s["mean"] == 3000
    assert s["p90"] == pytest.approx(4600)
    assert s["stdev"] == pytest.approx(1581.1388, rel=1e-6)
    assert s["cv"] == pytest.approx(0.527046, rel=1e-5)


def test_verdict_reasons():
    assert verdict(summarize([1.0] * 20)) == {"stable": True, "reasons": []}
    v = verdict(summarize([1.0, 2.0] * 3))
    assert not v["stable"]
    assert any("only 6 samples" in r for r in v["reasons"])
    assert any("CV" in r for r in v["reasons"])


def test_repeat_cv_ignores_differences_between_batches():
    # batch a takes 1 s, batch b 10 s, each perfectly repeatable
    assert repeat_cv([1.0, 10.0, 1.0, 10.0], ["a", "b", "a", "b"]) == 0.0
    assert math.isnan(repeat_cv([1.0, 10.0], ["a", "b"]))


def test_per_unit_cv():
    assert per_unit_cv([1.0, 2.0, 4.0], [10, 20, 40]) == pytest.approx(0.0)


class BertBase:
    hidden_size, num_hidden_layers, intermediate_size = 768, 12, 3072


def test_bert_base_flops_by_hand():
    shape = flops.encoder_shape(BertBase)
    # per layer: QKVO 4*768^2 + 4*768, FFN 2*768*3072 + 3072 + 768, 2 LayerNorms 4*768
    assert shape["n_params"] == 12 * 7_087_872 == 85_054_464
    per_token = 2 * 85_054_464 + 4 * 12 * 128 * 768
    assert flops.forward_flops(shape, 1, 128) == 128 * per_token
    assert flops.step_flops(shape, 2, 128, train=True) == 3 * 2 * 128 * per_token


def test_mfu_against_datasheet_peak():
    m = flops.mfu(494.75, "NVIDIA H200", "bfloat16", sms=132)
    assert m["mfu"] == pytest.approx(0.5)
    assert m["peak_source"].startswith("datasheet: H200 SXM")
    assert flops.mfu(1.0, None, "float32")["mfu"] is None


@pytest.mark.parametrize(
    "name,dtype,peak",
    [
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.5),  # SXM5
        ("NVIDIA H100 PCIe", "bfloat16", 756.5),
        ("NVIDIA H100 NVL", "bfloat16", 835.5),
        ("NVIDIA H100 NVL", "float32", 60.0),
        ("NVIDIA H200", "tf32", 494.5),
        ("NVIDIA H200 NVL", "tf32", 417.5),
        ("NVIDIA H200 NVL", "float16", 835.5),
        ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
        ("NVIDIA A100-PCIE-40GB", "bfloat16", 312.0),
        ("NVIDIA A100 80GB PCIe", "float32", 19.5),
        ("NVIDIA L40S", "bfloat16", 362.0),
    ],
)
def test_peaks_match_the_exact_product(name, dtype, peak):
    assert flops.find_peak(name, dtype)[0] == peak


@pytest.mark.parametrize(
    "name,sms,why",
    [
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", None, "MIG slice"),
        ("NVIDIA H200 MIG 3g.71gb", 60, "MIG slice"),
        ("NVIDIA H200", 60, "60 of the part's 132 SMs"),  # a slice that does not say MIG
        ("NVIDIA H100", None, "no datasheet peak"),  # not a product name: no guess
        ("NVIDIA H800 PCIe", None, "no datasheet peak"),
    ],
)
def test_no_peak_for_slices_and_unknown_products(name, sms, why):
    m = flops.mfu(100.0, name, "bfloat16", sms=sms)
    assert m["mfu"] is None and m["peak_tflops"] is None
    assert why in m["mfu_reason"]


def test_timed_loop_needs_min_iters_and_min_time():
    from accelbench.measure.timing import timed_loop

    calls = []
    few = timed_loop(
        calls.append, [1, 2], "cpu", warmup=2, min_iters=3, min_time=0.0, clock=FakeClock(1.0)
    )
    assert len(few.samples_s) == 3
    assert calls == [1, 2, 1, 2, 1]  # warm-up is not timed
    assert few.samples_s == [1.0, 1.0, 1.0]
    assert few.items == [1, 2, 1]
    long = timed_loop(
        lambda _: None, [0], "cpu", warmup=0, min_iters=1, min_time=30.0, clock=FakeClock(1.0)
    )
    assert len(long.samples_s) >= 10  # 3 clock reads per iteration: runs until 30 s passed


def test_verdict_takes_telemetry_reasons():
    from accelbench.measure.telemetry import stability_reasons, summarize_samples

    def sample(sm: float, temp: float, power: float, bits: int) -> dict:
        return {
            "sm_clock_mhz": sm,
            "mem_clock_mhz": 3201.0,
            "temperature_c": temp,
            "power_w": power,
            "gpu_util_pct": 100.0,
            "clocks_event_bits": bits,
        }

    tele = summarize_samples([sample(1980, 50, 600, 0), sample(1500, 80, 700, 0x40)], 100.0, 50)
    reasons = stability_reasons(tele)
    assert reasons == [
        "SM clock dropped to 1500 MHz (median 1740) with hw_thermal_slowdown",
        "throttling seen: hw_thermal_slowdown",
    ]
    assert tele["energy_per_sample_j"] == 2.0
    assert not verdict(summarize([1.0] * 20), reasons)["stable"]


def test_bootstrap_ratio_of_means():
    rng = np.random.default_rng(1)
    base = 2.0 + 0.05 * rng.standard_normal(200)
    fast = 1.0 + 0.05 * rng.standard_normal(200)
    ci = bootstrap_ratio(base, fast)
    assert ci.ratio == pytest.approx(base.mean() / fast.mean())
    assert ci.low < ci.ratio < ci.high
    assert ci.low > 1.9 and ci.high < 2.1
    assert ci.confidence == 0.95
    assert bootstrap_ratio(base, fast) == ci  # seeded: reproducible


def test_bootstrap_ratio_identical_constant_samples():
    ci = bootstrap_ratio([3.0] * 12, [3.0] * 12)
    assert (ci.ratio, ci.low, ci.high) == (1.0, 1.0, 1.0)


def test_bootstrap_ratio_strata_weigh_each_batch_once_per_cycle():
    # a loop cycling over a 1 s and a 9 s batch; the candidate stopped mid-cycle (3 x 1 s, 2 x 9 s)
    base = [1.0, 9.0] * 10
    new = [0.5, 4.5, 0.5, 4.5, 0.5]
    assert bootstrap_ratio(base, new, strata=2).ratio == pytest.approx(2.0)
    assert bootstrap_ratio(base, new).ratio != pytest.approx(2.0)  # plain means are biased


def test_bootstrap_ratio_paired_cancels_step_differences():
    rng = np.random.default_rng(2)
    steps = rng.uniform(1.0, 10.0, 100)  # unequal steps, identical in both runs
    noise = 1 + 0.01 * rng.standard_normal(100)
    paired = bootstrap_ratio(steps * 2, steps * noise, paired=True)
    loose = bootstrap_ratio(steps * 2, steps * noise)
    assert paired.high - paired.low < (loose.high - loose.low) / 5
    assert paired.low < 2.0 / noise.mean() < paired.high


def test_bootstrap_ratio_median_and_bad_input():
    assert bootstrap_ratio([1.0, 1.0, 100.0], [0.5, 0.5, 0.5], center="median").ratio == 2.0
    with pytest.raises(ValueError, match="paired"):
        bootstrap_ratio([1.0, 2.0], [1.0], paired=True)
    with pytest.raises(ValueError, match="center"):
        bootstrap_ratio([1.0], [1.0], center="mode")
