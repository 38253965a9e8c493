"""Sink tokens by identity: which token ids draw the attention wherever they stand.

Sink_k indexes the sink by position. Here each (sample, position) occurrence of a token is scored as
Sink_k scores a position: the share of (layer, head) pairs whose alpha_k exceeds eps, thresholded per
sample, and the sums are keyed by token id with scatter-adds on the device that holds alpha, so the host
never sees a (B, L, H, T) tensor. Position 1 is kept apart (it is Sink_1, whatever token stands there);
later positions are searched up to T/2, the range `largest_sink` searches, because alpha_k of a late k
averages few queries (at k = T it is one query's weight on itself).

Every function here is pure: sums in, new sums out.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..errors import SinklabError
from .metrics import is_sink

COMMON_POSITIONS = 3   # most common positions listed per token
MIN_HEAD_SHARE = 1.0   # % of heads: below it a later token is not named in the summary line
MIN_OCCURRENCES = 3    # fewer occurrences than this: too few to name a token in the summary line


@dataclass(frozen=True)
class TokenSums:
    """Running sums over occurrences, indexed by token id (V grows to the largest id seen)."""
    occurrences: torch.Tensor      # (V,) int64 occurrences in the searched positions
    sink_occurrences: torch.Tensor  # (E, V) int64 occurrences with alpha > eps in at least one head
    head_exceed: torch.Tensor      # (E, V) int64 (occurrence, layer, head) triples with alpha > eps
    alpha_sum: torch.Tensor        # (V,) float64 alpha averaged over layers and heads, summed over occurrences
    position_keys: torch.Tensor    # (P,) int64 id * stride + (position - 1) of sink occurrences at the first eps
    position_counts: torch.Tensor  # (P,) int64 how many sink occurrences each key has
    stride: int                    # positions per id in the keys (T)

    def to(self, device) -> "TokenSums":
        return replace(self, **{f: getattr(self, f).to(device) for f in
                                ("occurrences", "sink_occurrences", "head_exceed", "alpha_sum",
                                 "position_keys", "position_counts")})


def empty(n_eps: int, stride: int, device) -> TokenSums:
    z = lambda *s: torch.zeros(s, dtype=torch.int64, device=device)
    return TokenSums(z(0), z(n_eps, 0), z(n_eps, 0), torch.zeros(0, dtype=torch.float64, device=device),
                     z(0), z(0), stride)


def _grow(t: torch.Tensor, size: int) -> torch.Tensor:
    """Pad the last dimension with zeros to `size` (token ids larger than any seen so far)."""
    return t if t.shape[-1] >= size else torch.nn.functional.pad(t, (0, size - t.shape[-1]))


def merge_counts(keys: torch.Tensor, counts: torch.Tensor, new_keys: torch.Tensor,
                 new_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse histogram union: (sorted unique keys, summed counts)."""
    merged, inverse = torch.unique(torch.cat([keys, new_keys]), return_inverse=True)
    total = torch.zeros_like(merged).scatter_add_(0, inverse, torch.cat([counts, new_counts]))
    return merged, total


def add_batch(sums: TokenSums, alpha: torch.Tensor, ids: torch.Tensor, eps, first: int = 1) -> TokenSums:
    """Add a batch: alpha (B, L, H, P) of P consecutive positions starting at 1-based `first`, and their
    token ids (B, P). Counts stay on alpha's device."""
    if alpha.shape[0] != ids.shape[0] or alpha.shape[-1] != ids.shape[-1]:
        raise SinklabError(f"sink tokens: alpha {tuple(alpha.shape)} and token ids {tuple(ids.shape)} disagree "
                           "on samples or positions")
    ids = ids.to(alpha.device).long()
    flat = ids.flatten()
    size = max(sums.occurrences.shape[-1], int(flat.max()) + 1) if flat.numel() else sums.occurrences.shape[-1]
    eps_t = torch.tensor(list(eps), dtype=alpha.dtype, device=alpha.device).view(-1, 1, 1, 1, 1)
    heads = is_sink(alpha.unsqueeze(0), eps_t).sum(dim=(2, 3)).flatten(1)      # (E, B*P) heads above eps
    index = flat.expand(heads.shape[0], -1)
    occ = _grow(sums.occurrences, size).index_add(0, flat, torch.ones_like(flat))
    sink_occ = _grow(sums.sink_occurrences, size).scatter_add(1, index, (heads > 0).long())
    exceed = _grow(sums.head_exceed, size).scatter_add(1, index, heads)
    alpha_sum = _grow(sums.alpha_sum, size).index_add(0, flat, alpha.double().mean(dim=(1, 2)).flatten())
    positions = torch.arange(first - 1, first - 1 + ids.shape[1], device=alpha.device).expand_as(ids).flatten()
    sinking = heads[0] > 0
    new_keys, new_counts = torch.unique(flat[sinking] * sums.stride + positions[sinking], return_counts=True)
    keys, counts = merge_counts(sums.position_keys, sums.position_counts, new_keys, new_counts)
    return TokenSums(occ, sink_occ, exceed, alpha_sum, keys, counts, sums.stride)


def positions_of(sums: TokenSums, token: int) -> list[tuple[int, int]]:
    """(1-based position, sink occurrences) of one token at the first eps, most common first."""
    lo = token * sums.stride
    mask = (sums.position_keys >= lo) & (sums.position_keys < lo + sums.stride)
    pos = (sums.position_keys[mask] - lo + 1).tolist()
    cnt = sums.position_counts[mask].tolist()
    return sorted(zip(pos, cnt), key=lambda pc: (-pc[1], pc[0]))


def token_rows(sums: TokenSums, n_heads: int, eps, where: str, decode=None, limit: int | None = None) -> list[dict]:
    """One row per token id that is a sink at least once (first eps), most sink (occurrence, head) pairs first."""
    exceed = sums.head_exceed.cpu()
    total = int(exceed[0].sum())
    ranked = sorted((v for v in torch.nonzero(exceed[0]).flatten().tolist()),
                    key=lambda v: (-int(exceed[0, v]), v))[:limit]
    return [_row(sums, v, n_heads, eps, where, total, decode) for v in ranked]


def _row(sums: TokenSums, v: int, n_heads: int, eps, where: str, total: int, decode) -> dict:
    occ = int(sums.occurrences[v])
    pos = positions_of(sums, v)
    row = {"where": where, "token_id": v, "token": token_text(decode, v), "occurrences": occ,
           "sink_occurrences": int(sums.sink_occurrences[0, v]),
           "head_share_pct": round(100 * int(sums.head_exceed[0, v]) / (occ * n_heads), 4)}
    for e, value in enumerate(eps[1:], start=1):
        row[f"head_share_pct_eps{value:g}"] = round(100 * int(sums.head_exceed[e, v]) / (occ * n_heads), 4)
    row.update({"mean_alpha": round(float(sums.alpha_sum[v]) / occ, 6),
                "share_of_sink_pairs_pct": round(100 * int(sums.head_exceed[0, v]) / max(total, 1), 4),
                "position_min": min(p for p, _ in pos), "position_max": max(p for p, _ in pos),
                "positions_common": " ".join(f"{p}:{c}" for p, c in pos[:COMMON_POSITIONS])})
    return row


def first_row(sums: TokenSums, n_heads: int, eps, decode=None) -> dict:
    """Position 1 as one row, whatever token stands there (its head share is Sink_1)."""
    occ = int(sums.occurrences.sum())
    distinct = torch.nonzero(sums.occurrences).flatten().tolist()
    only = distinct[0] if len(distinct) == 1 else None
    return {"where": "first", "token_id": only if only is not None else "",
            "token": token_text(decode, only) if only is not None else f"(position 1: {len(distinct)} distinct ids)",
            "occurrences": occ, "sink_occurrences": int(sums.sink_occurrences[0].sum()),
            "head_share_pct": round(100 * int(sums.head_exceed[0].sum()) / max(occ * n_heads, 1), 4),
            **{f"head_share_pct_eps{value:g}": round(100 * int(sums.head_exceed[e].sum()) / max(occ * n_heads, 1), 4)
               for e, value in enumerate(eps[1:], start=1)},
            "mean_alpha": round(float(sums.alpha_sum.sum()) / max(occ, 1), 6), "share_of_sink_pairs_pct": "",
            "position_min": 1, "position_max": 1, "positions_common": f"1:{int(sums.sink_occurrences[0].sum())}"}


def token_text(decode, token: int) -> str:
    """The token's text, repr-escaped ('\\n', not a line break); empty without a tokenizer."""
    if decode is None:
        return ""
    try:
        return repr(decode(token))
    except Exception:  # a tokenizer that cannot decode one id alone: the id still names it
        return ""


def named(later: list[dict], count: int | None = None) -> list[dict]:
    """The later tokens worth naming (and keeping in a stream): a sink in >= MIN_HEAD_SHARE % of their heads
    over >= MIN_OCCURRENCES occurrences, in the table's order."""
    return [r for r in later if r.get("where", "later") == "later" and float(r["head_share_pct"]) >= MIN_HEAD_SHARE
            and int(r["occurrences"]) >= MIN_OCCURRENCES][:count]


def summary_line(first: dict, later: list[dict], count: int = 2) -> str:
    """'the sinks are the first token (73.2 %) and '\\n' (4.1 % of heads, positions 9-30)'."""
    named_rows = named(later, count)
    head = f"the sinks are the first token ({first['head_share_pct']:.1f} %)"
    if not named_rows:
        return head + (f"; no later token is a sink in >= {MIN_HEAD_SHARE:g} % of its heads "
                       f"over >= {MIN_OCCURRENCES} occurrences")
    parts = [f"{r['token'] or 'token ' + str(r['token_id'])} ({r['head_share_pct']:.1f} % of heads, "
             f"positions {r['position_min']}-{r['position_max']}, {r['occurrences']} occurrences)" for r in named_rows]
    return ", ".join([head] + parts[:-1]) + " and " + parts[-1]
