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


def test_every_position_panel_labels_a_tick_near_a_real_peak():
    """SmolLM2-135M at T=64: Sink_1 = 73 %, later positions 0-4 %. The old ticks were 0, 1 and 10 only."""
    later = [4.0, 2.5, 1.0, 0.5, 0.0, 0.0, 0.0]
    sweep = _sweep(T=64, values=(73.24, *later), se=(1.5,) + (0.5,) * 7)
    sweep.append({"T": 64, "eps": 0.3, "position": "sink*", "sink_pct": 0.0, "sink_se": float("nan")})
    sink_all = torch.tensor([73.24, *later] + [0.5] * 56)
    ax = plots.draw_sink_by_position(sweep, 64, 0.3, sink_all).axes[1]
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[1] >= 73.24
    lo, hi = ax.get_ylim()
    labelled = [float(t.get_text()) for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if lo <= v <= hi]
    assert any(73.24 - 15 <= v <= 73.24 for v in labelled), labelled
    assert 0 in labelled and 1 in labelled  # the 0-4 % positions are still read against ticks
    flat = plots.draw_sink_by_position(_sweep(), 32, 0.3, torch.zeros(32)).axes[1]
    assert [t.get_text() for t in flat.get_yticklabels()] == ["0", "1", "3"]  # nothing to mark


def test_sink_against_T_with_one_T_says_so_and_draws_each_eps():
    sweep = _sweep(T=64, values=(73.2, 1, 0, 0)) + _sweep(T=64, eps=0.5, values=(60.1, 0, 0, 0))
    fig = plots.draw_sink_vs_T(sweep)
    ax = fig.axes[0]
    assert "only one T measured" in ax.get_title() and "--T 64 128 256" in ax.get_title()
    assert not ax.lines or max(len(line.get_xdata()) for line in ax.lines) > 1  # no lone dot
    assert [round(p.get_height(), 1) for p in ax.patches] == [73.2, 60.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.3", "0.5"]
    assert [t.get_text() for t in ax.texts] == ["73.2", "60.1"]
    assert plots.sink_T_heading(sweep) == "Sink_1 at T=64 (one T measured)"
    several = _sweep(T=32) + _sweep(T=64)
    ax = plots.draw_sink_vs_T(several).axes[0]
    assert len(ax.lines) == 1 and list(ax.lines[0].get_xdata()) == [32, 64] and not ax.patches
    assert "one T" not in ax.get_title() and plots.sink_T_heading(several) == "Sink_1 against T"


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


def _head_maps(T=16):
    maps = torch.full((2, 3, T, T), 0.0)
    maps[..., 0] = 0.9                      # a sink column...
    maps[..., 1:] = torch.tril(torch.full((T, T - 1), 0.1 / T), -1)  # ...beside weights near 1/T
    return maps, torch.tensor([[0.9, 0.2, 0.1], [0.5, 0.05, 0.3]])


def _map_axes(fig):
    """The attention-map panels, without the key-0 strips and the colourbar."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() not in ("sink column", "<colorbar>")]


def test_attention_maps_use_a_log_colour_scale_with_a_colourbar():
    maps, alpha1 = _head_maps()
    fig = plots.draw_strongest_heads(maps, alpha1, count=3)
    images = [ax.images[0] for ax in _map_axes(fig)]
    assert len(images) == 3 and all(isinstance(im.norm, LogNorm) for im in fig.axes[0].images + images)
    assert images[0].norm.vmin == plots.MAP_FLOOR and images[0].norm.vmax == 1
    assert len(_colorbars(fig)) == 1
    shown = images[0].get_array()
    assert np.ma.is_masked(shown) and shown.mask[0, 1] and not shown.mask[1, 0]  # keys a query cannot see
    titles = [ax.get_title() for ax in _map_axes(fig)]
    assert titles[0].startswith("layer 0 head 0") and "0.90" in titles[0]


def test_attention_maps_show_the_sink_column_wide_enough_to_see():
    """At T = 64 (measure's default) key 0 is 1/64 of the map: its own strip must be >= 5 % of each panel."""
    maps, alpha1 = _head_maps(T=64)
    fig = plots.draw_strongest_heads(maps, alpha1, count=3)
    strips = [ax for ax in fig.axes if ax.get_label() == "sink column"]
    assert len(strips) == len(_map_axes(fig)) == 3
    for strip, ax in zip(strips, _map_axes(fig)):
        column = strip.images[0].get_array()
        assert column.shape == (64, 1) and np.allclose(column, 0.9)  # key 0 of the same head, and only it
        assert abs(np.subtract(*strip.get_xlim())) == 1  # one column fills the strip
        s, m = strip.get_position(), ax.get_position()
        assert s.width / (m.x1 - s.x0) >= 0.05, (s, m)
        assert s.y0 == m.y0 and s.y1 == m.y1 and strip.get_ylim() == ax.get_ylim()  # rows line up with the map


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
    page = training.report_run(str(run)).read_text()
    assert "model.d_model = 64" in page and "train.steps = 30" in page
    assert "tokens/s while training" in page and "900 tokens/s overall" in page
    assert "None" not in page and "<th>mfu</th>" not in page
