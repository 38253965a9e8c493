"""Probe inputs: natural text, random tokens, one repeated token, or the user's own file.

The BOS policy (`auto` = the tokenizer's default, `always`, `never`) changes results, so it is part
of every result row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..errors import SinklabError
from ..files import read_text

BUILTIN_PROBES = ("natural", "random", "repeat")
BOS_POLICIES = ("auto", "always", "never")


@dataclass
class TextTokenizer:
    """The minimum a probe needs from a tokenizer."""
    encode: callable          # str -> list[int], no special tokens
    vocab_size: int
    bos_id: int | None
    adds_bos: bool            # whether the tokenizer's default adds BOS
    special_ids: tuple = ()
    decode: callable = None   # list[int] -> str, special tokens dropped (None: ids only)


def from_hf_tokenizer(tok, vocab_size: int | None = None) -> TextTokenizer:
    probe = tok("a", add_special_tokens=True)["input_ids"]
    adds_bos = tok.bos_token_id is not None and len(probe) > 0 and probe[0] == tok.bos_token_id
    return TextTokenizer(
        encode=lambda s: tok(s, add_special_tokens=False)["input_ids"],
        vocab_size=int(vocab_size or len(tok)),
        bos_id=tok.bos_token_id,
        adds_bos=adds_bos,
        special_ids=tuple(tok.all_special_ids),
        decode=lambda ids: tok.decode(ids, skip_special_tokens=True),
    )


def byte_tokenizer(bos_id: int | None = None, vocab_size: int = 256) -> TextTokenizer:
    return TextTokenizer(encode=lambda s: list(s.encode("utf-8")), vocab_size=vocab_size,
                         bos_id=bos_id, adds_bos=False,
                         decode=lambda ids: bytes(i for i in ids if i < 256).decode("utf-8", errors="replace"))


def load_texts(probe: str, encoding_errors: str = "strict") -> list[str]:
    """Passages of a text probe: the built-in `natural` set, or a .txt / .jsonl file (UTF-8: a bad
    byte is an error naming the offset, unless encoding_errors="replace")."""
    if probe == "natural":
        raw = resources.files("sinklab.probes").joinpath("natural.jsonl").read_text(encoding="utf-8")
        return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]
    path = Path(probe)
    if not path.exists():
        raise SinklabError(f"unknown --probe {probe!r}: use one of {', '.join(BUILTIN_PROBES)} or a .txt/.jsonl file")
    if path.suffix not in (".txt", ".jsonl"):
        raise SinklabError(f"probe file {probe} must be .txt (passages split by blank lines) "
                           f"or .jsonl (a 'text' field)")
    content = read_text(path, encoding_errors, option=None)
    if path.suffix == ".jsonl":
        texts = []
        for i, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                texts.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise SinklabError(f"probe file {probe}, line {i}: expected a JSON object "
                                   f"with a 'text' field") from None
    else:
        texts = [p.strip() for p in content.split("\n\n")]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SinklabError(f"probe file {probe} is empty")
    return texts


def _with_bos(ids: list[int], tok: TextTokenizer, bos: str) -> list[int]:
    if bos == "always" or (bos == "auto" and tok.adds_bos):
        if tok.bos_id is None:
            raise SinklabError("--bos always: this tokenizer has no BOS token; use --bos never or auto")
        return [tok.bos_id] + ids
    return ids


def build_inputs(probe: str, tok: TextTokenizer, n: int, T: int, bos: str = "auto", seed: int = 0,
                 texts: list[str] | None = None) -> torch.Tensor:
    """(n, T) token ids. Text probes take the first T tokens of each passage, as the paper does."""
    if bos not in BOS_POLICIES:
        raise SinklabError(f"unknown --bos {bos!r}: use one of {', '.join(BOS_POLICIES)}")
    if n < 1 or T < 2:
        raise SinklabError(f"need n >= 1 and T >= 2 (got n={n}, T={T})")
    if probe in ("random", "repeat"):
        gen = torch.Generator().manual_seed(seed)
        allowed = torch.ones(tok.vocab_size, dtype=torch.bool)
        allowed[torch.tensor([i for i in tok.special_ids if 0 <= i < tok.vocab_size], dtype=torch.long)] = False
        pool = allowed.nonzero().squeeze(1)
        n_body = T - len(_with_bos([], tok, bos))
        if probe == "random":
            body = pool[torch.randint(len(pool), (n, n_body), generator=gen)]
        else:
            body = pool[torch.randint(len(pool), (n, 1), generator=gen)].expand(n, n_body)
        prefix = torch.tensor(_with_bos([], tok, bos), dtype=torch.long).expand(n, -1)
        return torch.cat([prefix, body], dim=1).contiguous()

    texts = texts if texts is not None else load_texts(probe)
    rows, longest = [], 0
    for text in texts:
        ids = _with_bos(tok.encode(text), tok, bos)
        longest = max(longest, len(ids))
        if len(ids) >= T:
            rows.append(ids[:T])
        if len(rows) == n:
            break
    if not rows:
        raise SinklabError(f"probe {probe!r} is too short: no passage has T={T} tokens (longest: {longest})")
    return torch.tensor(rows, dtype=torch.long)
