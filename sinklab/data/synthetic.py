"""Bigram-Backcopy (Guo et al. 2024, "Active-dormant attention heads"): a corpus where sinks form fast.

Every sequence starts with a fixed BOS token. Ordinary tokens follow a sparse random bigram chain.
After a trigger token, the next token copies the token just before the trigger. Attention heads
that only act on triggers must do nothing elsewhere, and dump their attention on BOS: a sink.
"""
from __future__ import annotations

import numpy as np

from ..errors import SinklabError
from ..files import claim_output_folder
from .shards import MANIFEST, write_prepared


def bigram_backcopy(n_tokens: int, vocab_size: int = 64, n_triggers: int = 3, seq_len: int = 256,
                    branching: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bos = vocab_size - 1
    triggers = np.arange(n_triggers)
    ordinary = np.arange(n_triggers, vocab_size - 1)
    nexts = rng.choice(np.arange(vocab_size - 1), size=(vocab_size, branching))  # may emit triggers too
    out = np.empty(n_tokens, dtype=np.uint16)
    pos = 0
    while pos < n_tokens:
        seq = [bos, int(rng.choice(ordinary))]
        while len(seq) < seq_len:
            prev = seq[-1]
            if prev in triggers and len(seq) >= 3:
                seq.append(seq[-2])  # back-copy
            else:
                seq.append(int(nexts[prev, rng.integers(branching)]))
        take = min(seq_len, n_tokens - pos)
        out[pos:pos + take] = seq[:take]
        pos += take
    return out


def check(n_tokens: int, vocab_size: int, seq_len: int, n_triggers: int = 3) -> None:
    """At least one sequence, a vocabulary with the triggers, BOS and one ordinary token, and room for
    a back-copy (BOS, a token, a trigger)."""
    if seq_len < 3:
        raise SinklabError(f"--seq-len must be at least 3 (BOS, a token, a trigger); got {seq_len}")
    if n_tokens < seq_len:
        raise SinklabError(f"--tokens must be at least --seq-len={seq_len} (one sequence); got {n_tokens}")
    if not n_triggers + 2 <= vocab_size <= 65536:
        raise SinklabError(f"--vocab must lie in {n_triggers + 2}..65536 ({n_triggers} triggers, BOS and at least one "
                           f"ordinary token, stored as uint16); got {vocab_size}")


def write(out: str, n_tokens: int = 2_000_000, vocab_size: int = 64, seq_len: int = 256, seed: int = 0,
          overwrite: bool = False) -> dict:
    """The corpus's shards and manifest in `out`; a folder holding prepared data is replaced only with `overwrite`."""
    check(n_tokens, vocab_size, seq_len)
    folder = claim_output_folder(out, MANIFEST, overwrite)
    n_val = max(seq_len * 64, n_tokens // 100) // seq_len * seq_len
    both = bigram_backcopy(n_tokens + n_val, vocab_size, seq_len=seq_len, seed=seed)  # one bigram table for both
    train, val = both[:n_tokens // seq_len * seq_len], both[n_tokens // seq_len * seq_len:]
    manifest = {"tokenizer": "bigram-backcopy", "vocab_size": vocab_size, "eot_id": vocab_size - 1,
                "dtype": "uint16", "tokens": {"train": len(train), "val": len(val)}, "seq_len": seq_len,
                "documents": len(train) // seq_len, "sha256": None, "inputs": ["synthetic"]}
    write_prepared(folder, {"train": train, "val": val}, manifest)
    return manifest
