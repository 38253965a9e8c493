"""Does cuDNN's attention (the op the fused measurement takes its output and row LSE from) return the
right output whatever layout and address its inputs have, whatever ran before it?

For each shape, q, k and v are made in three layouts (contiguous (B, H, T, D); HF's transposed
(B, T, H, D) view; contiguous at an address 8 bytes off 16-byte alignment) and passed, alternating, to
`aten._scaled_dot_product_cudnn_attention` as they are ("raw") and through sinklab's canonical_layout
("canonical"); each output is compared with float32 math on the same values.

    python benchmarks/gpu_cudnn_layouts.py --out rows.jsonl
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import emit, error_text  # noqa: E402

from sinklab.kernels.attention_sums import canonical_layout  # noqa: E402

SHAPES = [(1, 9, 6, 64), (1, 9, 16, 64), (4, 9, 1024, 64), (1, 32, 16, 128), (2, 32, 1024, 128)]
LAYOUTS = ("contiguous", "transposed", "misaligned")


def make(values: torch.Tensor, layout: str) -> torch.Tensor:
    B, H, T, D = values.shape
    if layout == "contiguous":
        return values.clone()
    if layout == "transposed":
        return values.transpose(1, 2).contiguous().transpose(1, 2)
    flat = torch.empty(values.numel() + 4, dtype=values.dtype, device=values.device)
    out = flat[4:].view(B, H, T, D)  # 4 bf16 elements = 8 bytes past the allocation's alignment
    out.copy_(values)
    return out


def cudnn(q, k, v):
    return torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, True, False,
                                                              scale=q.shape[-1] ** -0.5)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    emit({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
          "cudnn": torch.backends.cudnn.version()}, a.out)
    torch.manual_seed(0)
    for shape in SHAPES:
        base = [torch.randn(shape, device="cuda").bfloat16() for _ in range(3)]
        ref = torch.nn.functional.scaled_dot_product_attention(*(t.float() for t in base), is_causal=True)
        for how in ("raw", "canonical"):
            worst = {}
            for _ in range(a.rounds):
                for layout in LAYOUTS:
                    q, k, v = (make(t, layout) for t in base)
                    if how == "canonical":
                        q, k, v = (canonical_layout(t) for t in (q, k, v))
                    try:
                        err = float((cudnn(q, k, v).float() - ref).abs().max())
                    except RuntimeError as e:
                        worst[layout] = error_text(e)
                        continue
                    if not isinstance(worst.get(layout), str):
                        worst[layout] = max(err, worst.get(layout, 0.0))
            emit({"shape": list(shape), "inputs": how, "max_abs_err_vs_fp32_by_layout": worst}, a.out)


if __name__ == "__main__":
    main()
