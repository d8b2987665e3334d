"""CPU bf16 runs only where the CPU computes in bf16, unless asked to run emulated."""

import pytest

from accelbench.backends import precision
from accelbench.backends.precision import EMULATE_ENV, torch_capability


@pytest.mark.parametrize(
    "flags,env,ok",
    [
        ({"avx2", "fma"}, None, False),  # AVX2 only: oneDNN would emulate bf16
        ({"avx2", "fma"}, "emulated", True),
        ({"avx512f", "avx512_bf16"}, None, True),
        ({"avx512f", "amx_bf16"}, None, True),
        (set(), None, True),  # nothing known of the CPU (no /proc/cpuinfo flags): not refused
    ],
)
@pytest.mark.parametrize("mode", ["bf16", "bf16-weights"])
def test_cpu_bf16_needs_bf16_instructions(monkeypatch, flags, env, ok, mode):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    if env is None:
        monkeypatch.delenv(EMULATE_ENV, raising=False)
    else:
        monkeypatch.setenv(EMULATE_ENV, env)
    workload = "infer" if mode == "bf16-weights" else "train"
    allowed, reason = torch_capability(workload, "cpu", mode)
    assert allowed is ok
    if not ok:
        assert reason.startswith("this CPU has no bf16 instructions")
        assert f"{EMULATE_ENV}=emulated" in reason
    assert torch_capability(workload, "cpu", "fp32") == (True, "")
