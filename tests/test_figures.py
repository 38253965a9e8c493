"""The report's figures, read from the matplotlib objects: Sink axes inside [0, 100] %, integer layer
and head ticks, colourbars (log-scaled on attention maps), headings that say what was selected; and
the HTML page: the summary not clipped, Sink_k values under their headers, links to the tables."""
import json

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm

from sinklab.report import plots, sink_k_lines, training, write_results

matplotlib.use("Agg")


def _sweep(T=32, eps=0.3, values=(2.0, 0.5, 0.0, 0.0), se=(3.0, 1.0, 0.0, 0.0)):
    return [{"T": T, "eps": eps, "position": str(k + 1), "sink_pct": v, "sink_se": s}
            for k, (v, s) in enumerate(zip(values, se))]


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _integer_ticks(axis):
    ticks = axis.get_ticklocs()
    lo, hi = sorted(axis.get_view_interval())  # imshow inverts the y axis
    inside = [t for t in ticks if lo <= t <= hi]
    return bool(inside) and all(float(t).is_integer() for t in inside)


def test_sink_axes_stay_in_0_to_100_even_when_error_bars_reach_below_0():
    """A 2-layer model: Sink_1 = 2 % with a standard error of 3 must not draw an axis below 0."""
    fig = plots.draw_sink_by_position(_sweep(), 32, 0.3, torch.tensor([2.0, 0.5, 0.0, 0.0]))
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        assert lo == 0 and 0 < hi <= 100, (ax.get_title(), lo, hi)
        assert _integer_ticks(ax.xaxis), ax.get_title()
    big = plots.draw_sink_by_position(_sweep(values=(99.0, 1, 0, 0), se=(5.0, 0, 0, 0)), 32, 0.3,
                                      torch.tensor([99.0, 1, 0, 0]))
    assert big.axes[0].get_ylim() == (0, 100)


def test_sink_against_T_and_training_curve_have_percent_axes():
    sweep = _sweep(T=32) + _sweep(T=64, values=(150.0, 0, 0, 0))  # nonsense above 100 is still clipped
    ax = plots.draw_sink_vs_T(sweep).axes[0]
    assert ax.get_ylim() == (0, 100)
    assert [int(t) for t in ax.get_xticks()] == [32, 64]
    rows = [{"step": s, "loss": 5.0 - s / 10, "sink_1": 0.5 * s} for s in (1, 2, 3)]
    fig = training.draw_sink_and_loss({"run": rows})
    lo, hi = fig.axes[0].get_ylim()
    assert lo == 0 and hi <= 100 and _integer_ticks(fig.axes[0].xaxis)


def test_heatmap_and_norms_have_integer_layer_ticks_and_a_colourbar():
    alpha1 = torch.rand(2, 4)
    fig = plots.draw_alpha1_heatmap(alpha1, "t")
    ax = fig.axes[0]
    assert _integer_ticks(ax.xaxis) and _integer_ticks(ax.yaxis)
    assert len(_colorbars(fig)) == 1
    assert ax.images[0].get_clim() == (0, 1)
    layers = [{"T": 32, "layer": l, "hidden_ratio": 1.0 + l, "key_ratio": 0.5, "value_ratio": 0.4,
               "cos_first": 0.3, "cos_rest": 0.0} for l in range(2)]
    norms = plots.draw_norms_by_layer(layers, 32)
    assert all(_integer_ticks(a.xaxis) for a in norms.axes)
    assert norms.axes[1].get_ylim() == (-1, 1)


def test_attention_maps_use_a_log_colour_scale_with_a_colourbar():
    T = 16
    maps = torch.full((2, 3, T, T), 0.0)
    maps[..., 0] = 0.9                      # a sink column...
    maps[..., 1:] = torch.tril(torch.full((T, T - 1), 0.1 / T), -1)  # ...beside weights near 1/T
    alpha1 = torch.tensor([[0.9, 0.2, 0.1], [0.5, 0.05, 0.3]])
    fig = plots.draw_strongest_heads(maps, alpha1, count=3)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 3 and all(isinstance(im.norm, LogNorm) for im in images)
    assert images[0].norm.vmin == plots.MAP_FLOOR and images[0].norm.vmax == 1
    assert len(_colorbars(fig)) == 1
    shown = images[0].get_array()
    assert np.ma.is_masked(shown) and shown.mask[0, 1] and not shown.mask[1, 0]  # keys a query cannot see
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0].startswith("layer 0 head 0") and "0.90" in titles[0]


@pytest.mark.parametrize("alpha,words", [
    ([[0.9, 0.8], [0.7, 0.6]], "all above eps = 0.3"),
    ([[0.9, 0.1], [0.05, 0.02]], "1 above eps = 0.3"),
    ([[0.07, 0.01], [0.02, 0.03]], "none is a sink head: the largest mean alpha_1 is 0.07"),
])
def test_attention_map_heading_says_how_the_heads_were_chosen(alpha, words):
    heading = plots.heads_heading(torch.tensor(alpha), 0.3)
    assert "largest mean alpha_1" in heading and words in heading
    assert "strongest sink heads" not in heading


def test_sink_k_values_sit_under_their_headers():
    head, values = sink_k_lines({"1": 73.24, "2": 0.5, "10": 100.0})
    assert len(head) == len(values)
    for label in ("k=1", "k=2", "k=10"):
        end = head.index(label) + len(label)
        assert values[end - 1] != " " and (end == len(values) or values[end] == " ")


def test_measurement_report_page(tmp_path, tiny_hf_folders):
    from sinklab.measure.run import measure

    result = measure(str(tiny_hf_folders["llama"]), probe="random", n=4, T=[16, 32], eps=[0.2, 0.3], progress=False)
    out = write_results(result, tmp_path / "m")
    page = (out / "report.html").read_text()
    assert "white-space:pre-wrap" in page  # the summary wraps instead of scrolling sideways
    for name in ("sweep.csv", "heads.csv", "layers.csv", "summary.json"):
        assert f'href="{name}"' in page and (out / name).exists()
    assert "the first T and eps given" in page  # several T: the page says which one it shows
    assert "strongest sink heads" not in page
    assert (out / "figures" / "strongest_heads.png").exists()


def test_training_report_shows_the_config_and_throughput_not_mfu_none(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "loss": 4.0, "lr": 1e-3, "tokens_per_s": 1000 + s, "mfu": None} for s in range(1, 31)]
    rows[-1].update(sink_1=12.5, val_loss=3.9, tokens_per_s_overall=900)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 31, "lo')
    (run / "config.json").write_text(json.dumps({"model": {"d_model": 64}, "train": {"steps": 30}, "world_size": 1}))
    page = training.report_run(str(run), measure_final=False).read_text()
    assert "model.d_model = 64" in page and "train.steps = 30" in page
    assert "tokens/s while training" in page and "900 tokens/s overall" in page
    assert "None" not in page and "<th>mfu</th>" not in page
