"""The metric on attention matrices small enough to check by hand."""
import math

import torch

from sinklab.measure import metrics


def test_importance_scores_by_hand():
    # T = 3. Row i attends over keys <= i.
    A = torch.tensor([[1.0, 0.0, 0.0],
                      [0.6, 0.4, 0.0],
                      [0.5, 0.2, 0.3]])
    alpha = metrics.importance_scores(A)
    # alpha_1 = (1 + .6 + .5)/3 = 0.7; alpha_2 = (.4 + .2)/2 = 0.3; alpha_3 = .3/1
    assert torch.allclose(alpha, torch.tensor([0.7, 0.3, 0.3]))


def test_alpha_1_lies_between_1_over_T_and_1():
    T = 5
    uniform = torch.tril(torch.ones(T, T))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    # uniform causal attention: alpha_1 = mean_i 1/i
    expected = sum(1 / i for i in range(1, T + 1)) / T
    assert math.isclose(metrics.importance_scores(uniform)[0].item(), expected, rel_tol=1e-6)
    all_on_first = torch.zeros(T, T)
    all_on_first[:, 0] = 1
    assert metrics.importance_scores(all_on_first)[0].item() == 1.0


def test_sink_rate_thresholds_per_sample_before_averaging():
    # 2 samples, 1 layer, 2 heads; alpha_1 per (sample, head)
    alpha = torch.tensor([[[[0.9], [0.1]]],
                          [[[0.2], [0.35]]]])  # (2, 1, 2, 1)
    # exceed 0.3: sample 0 -> heads {0}, sample 1 -> heads {1}: 2 of 4 pairs = 50 %
    assert metrics.sink_rate(alpha, 0.3).item() == 50.0
    # thresholding the mean alpha instead gives head 0: .55 > .3, head 1: .225 -> 50 % too, but at eps=0.5:
    assert metrics.sink_rate(alpha, 0.5).item() == 25.0
    mean_then_threshold = (alpha.mean(0) > 0.5).float().mean().item() * 100
    assert mean_then_threshold == 50.0  # the two definitions differ; we keep the paper's
    assert torch.allclose(metrics.mean_alpha(alpha), torch.tensor([0.3875]))


def test_column_sums_by_row_blocks_matches_full_sum():
    torch.manual_seed(0)
    A = torch.softmax(torch.randn(2, 3, 17, 17).masked_fill(torch.triu(torch.ones(17, 17, dtype=torch.bool), 1), -1e9), -1)
    full = A.sum(-2)
    for block in (1, 4, 17, 100):
        got = metrics.column_sums_by_row_blocks(lambda i0, i1: A[..., i0:i1, :], 17, block)
        assert torch.allclose(got, full, atol=1e-6)


def test_column_sums_with_proxy_give_both_sums_in_one_pass():
    torch.manual_seed(0)
    W = torch.sigmoid(torch.randn(2, 3, 17, 17)) * torch.tril(torch.ones(17, 17))   # unnormalised weights
    calls = []

    def rows(i0, i1):
        calls.append((i0, i1))
        return W[..., i0:i1, :]
    for block in (1, 4, 17):
        calls.clear()
        proxy, raw = metrics.column_sums_with_proxy(rows, lambda w: metrics.proxy_scores(w, True), 17, block)
        assert torch.allclose(raw, W.sum(-2), atol=1e-6)
        assert torch.allclose(proxy, metrics.proxy_scores(W, True).sum(-2), atol=1e-6)
        assert len(calls) == -(-17 // block)  # each row block computed once


def test_first_token_norm_ratio_by_hand():
    x = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]]])  # norms 5, 1, 2, 1 -> median(1,2,1)=1
    assert metrics.first_token_norm_ratio(x).item() == 5.0


def test_qk_split_matches_brute_force():
    torch.manual_seed(1)
    q, k = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4)
    got = metrics.qk_split(q, k)
    T = 6
    cos = torch.nn.functional.cosine_similarity(q.unsqueeze(-2), k.unsqueeze(-3), dim=-1)  # (B,H,T,T)
    normprod = q.norm(dim=-1).unsqueeze(-1) * k.norm(dim=-1).unsqueeze(-2)
    rest = torch.tril(torch.ones(T, T, dtype=torch.bool))
    rest[:, 0] = False
    assert math.isclose(got["cos_first"], cos[..., :, 0].mean().item(), rel_tol=1e-5)
    assert math.isclose(got["normprod_first"], normprod[..., :, 0].mean().item(), rel_tol=1e-5)
    assert math.isclose(got["cos_rest"], cos[..., rest].mean().item(), rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(got["normprod_rest"], normprod[..., rest].mean().item(), rel_tol=1e-5)


def test_proxy_scores():
    sim = torch.tensor([[2.0, -1.0, 1.0]])
    assert torch.allclose(metrics.proxy_scores(sim, non_negative=False), torch.tensor([[0.5, 0.25, 0.25]]))
    assert torch.allclose(metrics.proxy_scores(sim.abs(), non_negative=True), torch.tensor([[0.5, 0.25, 0.25]]))


def test_causal_pair_sum_and_grouped_qk_split_match_brute_force():
    torch.manual_seed(2)
    a, b = torch.randn(2, 3, 150, 8), torch.randn(2, 3, 150, 8)
    brute = torch.tril(a @ b.transpose(-1, -2)).sum((-1, -2))
    assert torch.allclose(metrics.causal_pair_sum(a, b, block=64), brute, rtol=1e-4, atol=1e-3)
    q, k = torch.randn(1, 6, 70, 4), torch.randn(1, 2, 70, 4)   # 3 query heads per key head
    grouped = metrics.qk_split(q, k)
    repeated = metrics.qk_split(q, k.repeat_interleave(3, dim=1))
    for name in grouped:
        assert math.isclose(grouped[name], repeated[name], rel_tol=1e-5, abs_tol=1e-6), name


def test_paper_sink_star_convention_by_hand():
    # T = 3 real queries over a K-bias key (column 0) and 3 real keys; rows sum to 1.
    A = torch.tensor([[0.5, 0.5, 0.0, 0.0],
                      [0.2, 0.3, 0.5, 0.0],
                      [0.8, 0.1, 0.05, 0.05]])
    ours = A[:, 0].sum() / 3                         # sinklab: the mean over the real queries, 1.5 / 3 = 0.5
    assert math.isclose(ours.item(), 0.5)
    # the paper prepends the bias position with a query of its own, which can see only itself
    paper_matrix = torch.cat([torch.tensor([[1.0, 0.0, 0.0, 0.0]]), A])
    paper = metrics.importance_scores(paper_matrix)[0]   # (1 + 1.5) / 4 = 0.625
    assert math.isclose(paper.item(), 0.625)
    assert math.isclose(metrics.prepended_query_alpha(ours, 3).item(), paper.item(), rel_tol=1e-6)
    # at eps 0.6 the two conventions disagree on whether this head is a sink
    assert metrics.sink_rate(ours.view(1, 1, 1, 1), 0.6).item() == 0.0
    assert metrics.sink_rate(metrics.prepended_query_alpha(ours, 3).view(1, 1, 1, 1), 0.6).item() == 100.0


def test_prepended_columns_follow_the_decoder_layout():
    assert list(metrics.prepended_columns(None)) == []
    assert list(metrics.prepended_columns({"attn_bias": "k"})) == [0]
    assert list(metrics.prepended_columns({"attn_bias": "kv", "sink_token": True})) == [0, 1]
    # a sink logit comes first and has no position of its own
    assert list(metrics.prepended_columns({"sink_logit": True, "attn_bias": "k"})) == [1]
    assert list(metrics.prepended_columns({"sink_logit": True})) == []
