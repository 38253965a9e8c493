"""Typed configuration: every model variant is a field here, never a copied model file.

`ModelConfig.validate()` names the bad field and the allowed values; `from_dict` suggests the
nearest key for a typo.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import SinklabError

CHOICES = {
    "position": ("rope", "nope", "sinusoidal", "learned", "alibi", "relative"),
    "norm": ("rmsnorm", "layernorm"),
    "norm_position": ("pre", "post"),
    "ffn": ("swiglu", "geglu", "reglu", "relu", "gelu", "swish"),
    "head_combine": ("concat", "sum"),
    "attn_bias": ("none", "k", "kv", "v"),
    "score": ("softmax", "scaled_softmax", "off_by_one", "softpick", "sigmoid", "elu1", "kernel"),
    "kernel": ("elu1", "identity", "mlp"),
    "kernel_normalizer": ("sum", "max_abs_sum", "none"),
    "gate": ("none", "elementwise", "headwise"),
    "sparse": ("none", "local_global", "strided", "moba", "nsa", "dsa"),
    "sparse_select": ("block", "token"),
}


@dataclass
class ModelConfig:
    """One LLaMA-style decoder. Defaults are the paper's 60M model (Gu et al., 2025)."""
    vocab_size: int = 50304
    d_model: int = 768
    n_layers: int = 10
    n_heads: int = 8
    n_kv_heads: int | None = None          # grouped-query attention; None = n_heads
    d_ffn: int = 1536
    max_seq_len: int = 2048
    # positions
    position: str = "rope"
    rope_theta: float = 10000.0
    relative_buckets: int = 32              # T5-style relative position bias
    relative_max_distance: int = 128
    # normalisation and FFN
    norm: str = "rmsnorm"
    norm_position: str = "pre"
    norm_eps: float = 1e-6
    ffn: str = "swiglu"
    linear_bias: bool = False
    head_combine: str = "concat"            # "sum": every head has width d_model and heads are summed
    # attention biases (extra key / value seen by every query)
    attn_bias: str = "none"
    attn_bias_shared: bool = False          # one bias for all heads instead of one per head
    attn_bias_dim: int | None = None        # K bias living in the first d_a dims of a head
    value_bias_scale: float | None = None   # fixed value bias v* = m * v' (v' a fixed unit vector)
    sink_token: bool = False                # a learnable token prepended to every sequence
    # score function and normalisation
    score: str = "softmax"
    score_scale: float = 1.0                # scaled_softmax: rows sum to this
    normalize: bool = False                 # sigmoid / elu1: divide each row by its sum
    sigmoid_bias: float | str | None = None  # a number, or "auto" for -log(T)
    kernel: str = "elu1"
    kernel_normalizer: str = "sum"
    sink_logit: bool = False                # gpt-oss: a learned per-head logit in the denominator
    gate: str = "none"                      # gated attention (Qwen 2025)
    # masks
    prefix_len: int | None = None           # prefix LM: the first p tokens see each other
    window: int | None = None               # sliding window: query i sees keys i-w+1..i
    # sparse attention patterns
    sparse: str = "none"                    # local_global | strided | moba
    sparse_window: int = 256                # local band of local_global
    sparse_globals: int = 1                 # global tokens of local_global
    sparse_stride: int = 128                # strided: band and stride
    sparse_block: int = 64                  # moba: key block size
    sparse_topk: int = 3                    # moba: past blocks selected per query
    # moba / nsa: a query block chooses once (block-sparse, fast) or each token does (the papers' gate)
    sparse_select: str = "block"
    force_first_block: bool = False         # moba / nsa: always select block 0 (NSA hard-codes it)
    branch_gate: str | None = None          # nsa: "sigmoid" (default) or "softmax" mixing of its 3 branches
    dsa_tokens: int = 256                   # dsa: tokens each query keeps (its own included)
    dsa_heads: int = 4                      # dsa: indexer heads
    dsa_dim: int = 32                       # dsa: indexer width
    # init and embeddings
    tie_embeddings: bool = False
    init_std: float = 0.02

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.d_model if self.head_combine == "sum" else self.d_model // self.n_heads

    @property
    def softmax_family(self) -> bool:
        """Softmax rows: plain, scaled by a constant, or with off-by-one's zero logit."""
        return self.score in ("softmax", "scaled_softmax", "off_by_one")

    @property
    def sdpa_softmax(self) -> bool:
        """Softmax or scaled softmax: what SDPA computes (scaled afterwards), given no sink column."""
        return self.score in ("softmax", "scaled_softmax")

    @property
    def has_bias_key(self) -> bool:
        """A K (or K/V) bias: one added key that every query sees."""
        return self.attn_bias in ("k", "kv")

    @property
    def sink_column(self) -> bool:
        """A logit column in the denominator: gpt-oss's learned sink logit, or off-by-one's zero."""
        return self.sink_logit or self.score == "off_by_one"

    @property
    def n_extra_keys(self) -> int:
        """Added positions every query sees: a K/KV bias key, or a sink logit column."""
        return int(self.has_bias_key) + int(self.sink_column)

    @property
    def prepended_key_columns(self) -> range:
        """Which added-key columns (laid out as the decoder lays them out: a sink logit column first, then a K/KV
        bias key, then sink-token prefixes) stand for a prepended position in the paper's evaluation. A sink
        logit has no position."""
        start = int(bool(self.sink_column))
        return range(start, start + int(self.has_bias_key) + int(bool(self.sink_token)))

    @property
    def proxy_scores(self) -> bool:
        """Attention without row normalisation: measured through the paper's proxy scores."""
        if self.score in ("sigmoid", "elu1"):
            return not self.normalize
        return self.score == "kernel" and self.kernel_normalizer != "sum"

    def validate(self) -> "ModelConfig":
        check_types(self, "model")
        check_ranges(self, "model", MODEL_RANGES)
        if self.n_kv_heads is not None and self.n_kv_heads < 1:
            raise SinklabError(f"config field model.n_kv_heads must be at least 1 or null (got {self.n_kv_heads})")
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise SinklabError(f"config field {name}={value!r} is not one of: {', '.join(allowed)}")
        self._validate_shape()
        self._validate_options()
        self._validate_sparse()
        return self

    def _validate_shape(self) -> None:
        """Heads, head dimension, window and prefix fit together."""
        if self.head_combine == "concat" and self.d_model % self.n_heads:
            raise SinklabError(f"config field n_heads={self.n_heads} must divide d_model={self.d_model}")
        if self.n_heads % self.kv_heads:
            raise SinklabError(f"config field n_kv_heads={self.kv_heads} must divide n_heads={self.n_heads}")
        if self.position == "rope" and self.head_dim % 2:
            raise SinklabError(f"config field position='rope' needs an even head dimension (got {self.head_dim})")
        if self.window is not None and self.window < 1:
            raise SinklabError(f"config field window must be at least 1 (got {self.window})")
        if self.prefix_len is not None and not (0 < self.prefix_len <= self.max_seq_len):
            raise SinklabError(f"config field prefix_len={self.prefix_len} must lie in "
                               f"1..max_seq_len={self.max_seq_len}")
        if self.attn_bias_dim is not None and not (0 < self.attn_bias_dim <= self.head_dim):
            raise SinklabError(f"config field attn_bias_dim must lie in 1..head_dim={self.head_dim}")

    def _validate_options(self) -> None:
        """Options that only make sense beside another choice."""
        if self.value_bias_scale is not None and self.attn_bias != "k":
            raise SinklabError("config field value_bias_scale needs attn_bias='k' (a fixed value for the K bias)")
        if self.sink_logit and self.score not in ("softmax", "scaled_softmax"):
            raise SinklabError("config field sink_logit needs score='softmax' (it joins the softmax denominator)")
        if isinstance(self.sigmoid_bias, str) and self.sigmoid_bias != "auto":
            raise SinklabError(f"config field sigmoid_bias={self.sigmoid_bias!r} must be a number or 'auto'")
        if self.score_scale <= 0:
            raise SinklabError("config field score_scale must be positive")

    def _validate_sparse(self) -> None:
        """The sparse-attention fields fit the chosen pattern."""
        for name in ("sparse_window", "sparse_globals", "sparse_stride", "sparse_block"):
            if self.sparse != "none" and int(getattr(self, name)) < 1:
                raise SinklabError(f"config field {name} must be at least 1 (got {getattr(self, name)})")
        if self.branch_gate is not None and self.sparse != "nsa":
            raise SinklabError(f"config field branch_gate={self.branch_gate!r} applies only to sparse='nsa' "
                               f"(got sparse={self.sparse!r})")
        if self.branch_gate not in (None, "sigmoid", "softmax"):
            raise SinklabError(f"config field branch_gate={self.branch_gate!r} is not one of: sigmoid, softmax")
        if self.sparse == "dsa" and min(self.dsa_tokens, self.dsa_heads, self.dsa_dim) < 1:
            raise SinklabError("config fields dsa_tokens, dsa_heads and dsa_dim must be at least 1")
        if self.sparse == "nsa" and (self.score != "softmax" or self.n_extra_keys or self.sink_token):
            raise SinklabError("config field sparse='nsa' needs score='softmax' without extra keys or a sink token")
        if self.sparse in ("moba", "nsa"):
            self._validate_block_selection()

    def _validate_block_selection(self) -> None:
        """MoBA and NSA pick top-k blocks of keys: the blocks must tile the context and k must fit in it."""
        if self.sparse_topk < 0:
            raise SinklabError(f"config field sparse_topk must be >= 0 (got {self.sparse_topk})")
        if self.max_seq_len % self.sparse_block:
            raise SinklabError(f"config field sparse_block={self.sparse_block} does not divide "
                               f"max_seq_len={self.max_seq_len}")
        if self.sparse_topk > self.max_seq_len // self.sparse_block:
            raise SinklabError(f"config field sparse_topk={self.sparse_topk} is larger than the "
                               f"{self.max_seq_len // self.sparse_block} blocks of max_seq_len={self.max_seq_len}")

    def check_length(self, T: int) -> None:
        """Errors that depend on the sequence length."""
        if T > self.max_seq_len:
            raise SinklabError(f"T={T} is longer than the model's context of {self.max_seq_len} tokens")
        if self.prefix_len is not None and self.prefix_len > T:
            raise SinklabError(f"config field prefix_len={self.prefix_len} is longer than T={T}")


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**check_keys(cls, d, "model")).validate()

    def replace(self, **changes) -> "ModelConfig":
        check_keys(type(self), changes, "model")
        return dataclasses.replace(self, **changes).validate()


# (low, high, low_open, high_open) per numeric field; None = unbounded on that side
MODEL_RANGES = {
    **{name: (1, None, False, False) for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ffn",
                                                  "max_seq_len")},
    "rope_theta": (0, None, True, False), "norm_eps": (0, None, True, False), "init_std": (0, None, True, False),
    "relative_buckets": (1, None, False, False), "relative_max_distance": (1, None, False, False),
    "sparse_topk": (0, None, False, False),
}

_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "tuple[int, int]": "a pair of integers [a, b]", "None": "null"}


def _coerce(value, kind: str):
    """`value` as the annotation `kind` wants it, or raise ValueError. YAML and JSON give ints for
    floats (1 for 1.0) and floats for integral values (1e3), so both convert where exact."""
    exact = {"None": value is None, "bool": isinstance(value, bool), "str": isinstance(value, str)}
    if kind in exact:
        if exact[kind]:
            return value
        raise ValueError(kind)
    if isinstance(value, bool):  # True is an int to Python, never a number to a user
        raise ValueError(kind)
    return _coerce_number(value, kind)


def _coerce_number(value, kind: str):
    if kind == "int":
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    elif kind == "tuple[int, int]":
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    raise ValueError(kind)


def check_types(cfg, section: str) -> None:
    """Every field of a config dataclass has a value of its annotated type (converted where exact:
    1e3 for an int, 1 for a float); otherwise one error naming the field, its value and the type."""
    for f in fields(cfg):
        kinds = [k.strip() for k in str(f.type).split("|")]
        value = getattr(cfg, f.name)
        for kind in kinds:
            try:
                setattr(cfg, f.name, _coerce(value, kind))
                break
            except ValueError:
                continue
        else:
            wanted = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
            raise SinklabError(f"config field {section}.{f.name}={value!r} must be {wanted}")


def check_ranges(cfg, section: str, ranges: dict) -> None:
    """Numeric fields inside their range, each error naming the field, the value and the range."""
    for name, (low, high, low_open, high_open) in ranges.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            bounds = " and ".join(x for x in (lo, hi) if x)
            raise SinklabError(f"config field {section}.{name}={value!r} must be {bounds}")


def check_keys(cls, d: dict, section: str) -> dict:
    names = [f.name for f in fields(cls)]
    for key in d:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SinklabError(f"unknown {section} config key {key!r}{hint}")
    return d


PRESETS: dict[str, dict[str, Any]] = {
    "paper-60m": {},
    "paper-1b": {"d_model": 2048, "n_layers": 22, "n_heads": 16, "d_ffn": 5632},
    "quick-60m": {"vocab_size": 8192},
    "faithful-60m": {"vocab_size": 8192},
    "tiny": {"vocab_size": 256, "d_model": 64, "n_layers": 2, "n_heads": 4, "d_ffn": 128, "max_seq_len": 256},
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise SinklabError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides}).validate()


def load_config_file(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SinklabError(f"config file does not exist: {path}" if not path.exists() else
                           f"config {path} is a folder, not a YAML/JSON file")
    try:
        text = path.read_text(encoding="utf-8")
        raw = (yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)) or {}
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SinklabError(f"cannot parse config file {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise SinklabError(f"config file {path} must hold a mapping with model: and train: sections "
                           f"(got {type(raw).__name__})")
    return raw


__all__ = ["ModelConfig", "PRESETS", "preset", "CHOICES", "check_keys", "check_types", "check_ranges",
           "load_config_file"]
