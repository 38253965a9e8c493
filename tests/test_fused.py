"""The fused measurement path (Triton kernels) against the exact row-block path.

The kernels run on the CPU through Triton's interpreter (TRITON_INTERPRET=1, float32), in a
subprocess because the variable is read when the kernels are defined. bf16 on the GPU is checked by
benchmarks/gpu_checks_measure.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sinklab.kernels import attention_sums

HELPER = Path(__file__).parent / "helpers" / "fused_alphas.py"
triton = pytest.importorskip("triton")


def _run(interpret: bool, *args) -> dict:
    env = dict(os.environ, TRITON_INTERPRET="1" if interpret else "0", PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_fused_alpha_equals_exact_path_in_float32():
    exact, fused = _run(False), _run(True)
    assert set(exact) == set(fused)
    for name in exact:
        a, b = torch.tensor(exact[name]["alpha"]), torch.tensor(fused[name]["alpha"])
        assert (a - b).abs().max() < 1e-5, name
        assert (a - b).abs().max() > 0, f"{name}: the fused path did not run"  # the two paths round differently
        if exact[name]["extra"] is not None:
            assert torch.allclose(torch.tensor(exact[name]["extra"]), torch.tensor(fused[name]["extra"]), atol=1e-5)
        assert fused[name]["logits_diff"] < 1e-4, name  # the fused output is the model's own
        for key, value in exact[name]["qk"].items():
            assert abs(value - fused[name]["qk"][key]) < 1e-5, (name, key)


def test_kernels_at_every_tile_shape_and_window():
    errors = _run(True, "--kernels")
    assert len(errors) == 20
    bad = {case: err for case, err in errors.items() if not err < 1e-5}
    assert not bad, bad


@pytest.mark.parametrize("device,dtype,head_dim,T,softcap,mask,expected", [
    ("cuda", torch.bfloat16, 128, 8192, None, "causal", "cudnn"),
    ("cuda", torch.bfloat16, 256, 8192, None, "causal", "flash"),  # cuDNN's head dims stop at 128
    ("cuda", torch.float16, 64, 32768, None, "window", "flash"),
    ("cuda", torch.float32, 64, 4096, None, "causal", "triton"),
    ("cuda", torch.bfloat16, 72, 64, None, "causal", "cudnn"),
    ("cuda", torch.bfloat16, 100, 64, None, "causal", "triton"),   # flash wants head dims in multiples of 8
    ("cuda", torch.bfloat16, 512, 64, None, "causal", None),      # beyond the kernels' head dim
    ("cuda", torch.bfloat16, 128, 64, 30.0, "causal", None),      # softcap: the exact path
    ("cuda", torch.bfloat16, 128, 64, None, "other", None),       # padding or additive masks
    ("cpu", torch.float32, 64, 64, None, "causal", None),         # the CPU keeps the exact path
])
def test_fused_plan_table(device, dtype, head_dim, T, softcap, mask, expected):
    got = attention_sums.fused_plan(device, dtype, head_dim, T, softcap=softcap, mask_kind=mask, interpret=False)
    assert (got.lse_source if got else None) == expected


def test_mask_kind_recognises_causal_and_window_masks():
    from sinklab.measure.capture import mask_kind

    T = 10
    i = torch.arange(T)
    causal = (i[None, :] <= i[:, None])[None, None]
    window = causal & (i[:, None] - i[None, :] < 4)
    assert mask_kind(None, T, None) == "causal"
    assert mask_kind(causal, T, None) == "causal"
    assert mask_kind(window, T, 4) == "window"
    assert mask_kind(causal, T, 4) == "other"          # the mask does not carry the window it claims
    assert mask_kind(None, T, 4) == "other"
    assert mask_kind(None, T, 20) == "causal"          # a window longer than T is plain causal
    padded = causal.clone()
    padded[..., 0] = False
    assert mask_kind(padded, T, None) == "other"
    assert mask_kind(causal.float(), T, None) == "other"
    assert mask_kind(None, T, None, is_causal=False) == "other"
