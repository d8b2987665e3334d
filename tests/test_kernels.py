"""Kernel-name classification and the mode verdict, on real cuBLAS/CUTLASS/flash kernel names."""

import pytest

from accelbench.measure.kernel_profile import findings
from accelbench.measure.kernels import classify, mode_verdict, summarize

FFMA = (
    "sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize128x128x8_stage3_warpsize2x2x1_ffma_"
    "aligna4_alignc4_execute_kernel__5x_cublas"
)
TF32 = (
    "sm80_xmma_gemm_tf32tf32_tf32f32_f32_nt_n_tilesize128x128x16_stage4_warpsize2x2x1_tensor16x8x8"
)
BF16_SM90 = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_"
    "execute_segment_k_off_kernel__5x_cublas"
)
FLASH = (
    "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, "
    "cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 128, 4, cutlass::bfloat16_t> >, false, "
    "false, false, false, true, true, false, false>(pytorch_flash::Flash_fwd_params)"
)
MEM_EFF_F32 = (
    "fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<float, "
    "cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)"
)


@pytest.mark.parametrize(
    "name,kind,tensor_core,dtype",
    [
        (FFMA, "gemm", False, "fp32"),
        ("ampere_sgemm_128x64_tn", "gemm", False, "fp32"),
        ("cutlass_80_simt_sgemm_128x128_8x4_nn_align1", "gemm", False, "fp32"),
        (TF32, "gemm", True, "tf32"),
        ("ampere_tf32_s1688gemm_tf32_128x128_16x3_tn", "gemm", True, "tf32"),
        (BF16_SM90, "gemm", True, "bf16"),
        ("ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn", "gemm", True, "bf16"),
        (
            "ampere_fp16_s16816gemm_fp16_64x64_sliced1x2_ldg8_relu_f2f_stages_64x6_tn",
            "gemm",
            True,
            "fp16",
        ),
        (
            "cutlass_80_tensorop_f16_s16816gemm_relu_f16_128x128_32x4_tn_align8",
            "gemm",
            True,
            "fp16",
        ),
        # cuBLASLt's nvjet GEMMs (Hopper and later): nvjet[_smNN]_<A/B, compute, output types>
        ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT", "gemm", True, "bf16"),
        ("nvjet_sm90_tst_192x176_64x4_2x1_v_bz_coopB_bias_TNT", "gemm", True, "bf16"),
        ("nvjet_sm90_tss_128x192_64x5_2x1_v_bz_coopB_NTN", "gemm", True, "bf16"),
        ("nvjet_hsh_256x128_64x4_1x2_h_bz_coopA_NNT", "gemm", True, "fp16"),
        ("nvjet_sm90_hss_64x8_64x16_1x1_h_bz_splitK_NNT", "gemm", True, "fp16"),
        ("nvjet_sss_tf32_128x256_TNT", "gemm", True, "tf32"),
        ("nvjet_qqtst_128x256_128x6_2x1_2cta_v_bz_TNT", "gemm", True, "fp8"),
        ("nvjet_sss_128x64_64x4_1x2_h_bz_TNT", "gemm", None, "fp32"),  # how: not in the name
        ("triton_tem_fused_addmm_gelu_3", "gemm", None, None),
        (FLASH, "attention", True, "bf16"),
        (MEM_EFF_F32, "attention", None, "fp32"),
        (
            "void splitKreduce_kernel<32, 16, int, float, float, float, float, true, false>",
            "other",
            None,
            None,
        ),
        (
            "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl>",
            "other",
            None,
            None,
        ),
        ("triton_per_fused_native_layer_norm_0", "other", None, None),
    ],
)
def test_classify_real_kernel_names(name, kind, tensor_core, dtype):
    cls = classify(name)
    assert (cls.kind, cls.tensor_core, cls.dtype) == (kind, tensor_core, dtype)


def test_summary_shares_and_dtypes():
    s = summarize(
        [
            (FFMA, 30.0),
            (TF32, 60.0),
            ("triton_tem_fused_mm_0", 10.0),
            (FLASH, 5.0),
            ("elementwise_kernel", 95.0),
        ]
    )
    assert s["kernel_time_us"] == pytest.approx(200.0)
    assert s["gemm"]["time_us"] == pytest.approx(100.0)
    assert s["gemm"]["tensor_core_share"] == pytest.approx(60 / 90)
    assert s["gemm"]["unclassified_share"] == pytest.approx(0.1)
    assert s["gemm"]["dtypes_us"] == {"fp32": 30.0, "tf32": 60.0, "unknown": 10.0}
    assert s["attention"]["tensor_core_share"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kernels,precision,effective",
    [
        ([(FFMA, 100.0)], "fp32", True),
        ([(FFMA, 100.0)], "tf32", False),  # TF32 asked for, SIMT FP32 ran
        ([(TF32, 100.0)], "fp32", False),  # strict FP32 asked for, Tensor Cores ran
        ([(TF32, 100.0)], "tf32", True),
        ([(BF16_SM90, 98.0), (FFMA, 2.0)], "bf16", True),
        ([(FFMA, 90.0), (BF16_SM90, 10.0)], "bf16-weights", False),
        ([("triton_tem_fused_mm_0", 100.0)], "bf16", None),  # cannot tell from the name
    ],
)
def test_mode_verdict(kernels, precision, effective):
    ok, note = mode_verdict(summarize(kernels), precision)
    assert ok is effective
    assert note


def test_hopper_profile_of_nvjet_gemms_has_known_dtypes():
    s = summarize(
        [
            ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT", 70.0),
            ("nvjet_sm90_hsh_64x8_64x16_1x1_h_bz_splitK_NNT", 20.0),
            ("nvjet_sss_tf32_128x256_TNT", 10.0),
        ]
    )
    assert s["gemm"]["dtypes_us"] == {"bf16": 70.0, "fp16": 20.0, "tf32": 10.0}
    assert "unknown" not in s["gemm"]["dtypes_us"]
    assert s["gemm"]["tensor_core_share"] == pytest.approx(1.0)
    assert mode_verdict(s, "bf16")[0] is True


def test_findings_without_kernels_cannot_tell():
    f = findings([], {}, "bf16")
    assert f["mode_effective"] is None
    assert "no CUDA kernel" in f["mode_note"]
    f = findings([(FFMA, 5.0), (FFMA, 5.0)], {"float": 2}, "fp32")
    assert f["top_kernels"] == [[FFMA, 10.0]]
    assert f["mode_effective"] is True
