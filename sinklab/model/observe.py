"""What the decoder reports to a measurement, owned by the model so the model imports no measure code.

`Recorder` is the interface a measurement implements (`sinklab.measure.capture.AttentionRecorder`
does); the decoder calls it at its observation points. `proxy_scores` and `row_block_size` are the
two pieces of arithmetic that both the model's dense path and the measurement use.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch

WeightsForRows = Callable[[int, int], torch.Tensor]  # (i0, i1) -> (B, H, i1 - i0, n_extra + T) weights


class Recorder(Protocol):
    """The observation points of `SinkLM.hidden_states(..., recorder=)`."""
    keep_map_upto: int

    def reset(self) -> None: ...

    def observe(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                weights_for_rows: WeightsForRows, n_extra: int = 0, visible: torch.Tensor | None = None,
                branch: str | None = None, proxy=None) -> None: ...

    def observe_columns(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, col: torch.Tensor,
                        extra_col: torch.Tensor | None = None, visible: torch.Tensor | None = None,
                        attention_map: torch.Tensor | None = None) -> None: ...

    def observe_hidden(self, layer: int, hidden: torch.Tensor) -> None: ...


def row_block_size(n_rows: int, n_keys: int, batch_heads: int, budget_elems: int = 1 << 25) -> int:
    """Rows per block so that one (batch*heads, rows, keys) float block stays under `budget_elems`."""
    return max(1, min(n_rows, budget_elems // max(1, batch_heads * n_keys)))


def proxy_scores(similarity: torch.Tensor, non_negative: bool) -> torch.Tensor:
    """The paper's stand-in for attention without row normalisation (sigmoid, kernels).

    sim / sum(sim) when the similarities are non-negative, |sim| / sum(|sim|) otherwise; masked
    entries must already be zero.
    """
    s = similarity if non_negative else similarity.abs()
    return s / s.sum(-1, keepdim=True).clamp_min(1e-12)
