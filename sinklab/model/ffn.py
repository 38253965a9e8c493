"""Feed-forward blocks: gated (SwiGLU, GeGLU, ReGLU) and plain (ReLU, GeLU, Swish)."""
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"swiglu": F.silu, "geglu": F.gelu, "reglu": F.relu, "relu": F.relu, "gelu": F.gelu, "swish": F.silu}


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ffn: int, kind: str, bias: bool = False):
        super().__init__()
        self.gated = kind.endswith("glu")
        self.act = ACTIVATIONS[kind]
        self.up = nn.Linear(d_model, d_ffn, bias=bias)
        self.gate = nn.Linear(d_model, d_ffn, bias=bias) if self.gated else None
        self.down = nn.Linear(d_ffn, d_model, bias=bias)

    def forward(self, x):
        h = self.act(self.gate(x)) * self.up(x) if self.gated else self.act(self.up(x))
        return self.down(h)
