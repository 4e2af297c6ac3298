"""persona_sae.figures from small fixed data: labelled axes and legends that match the marks."""

import math

from persona_sae import figures


def test_steer_marks_fully_incoherent_points_and_plots_incoherence(tmp_path):
    rows = [{"condition": "latent 1", "coef": c, "rate": r, "lo": lo, "hi": hi, "incoherent": i}
            for c, r, lo, hi, i in [(-1.0, math.nan, math.nan, math.nan, 1.0), (0.0, 0.2, 0.1, 0.3, 0.0),
                                    (1.0, None, None, None, 1.0)]]
    fig = figures.steer(tmp_path / "st.png", rows, "probe")
    ax, bx = fig.axes
    xs = sorted(float(x) for c in ax.collections if c.get_offsets().shape[0] == 2 for x in c.get_offsets()[:, 0])
    assert xs == [-1.0, 1.0]  # both empty points marked, none dropped silently
    assert "every answer incoherent (no rate)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert list(bx.lines[0].get_ydata()) == [100.0, 0.0, 100.0]
    assert ax.get_ylabel() and bx.get_ylabel() and bx.get_xlabel()


def test_steer_without_empty_points_has_no_marker_entry(tmp_path):
    rows = [{"condition": "latent 1", "coef": 0.0, "rate": 0.2, "lo": 0.1, "hi": 0.3, "incoherent": 0.0}]
    ax = figures.steer(tmp_path / "st.png", rows, "probe").axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["latent 1"]


def test_monitor_legend_names_the_misaligned_line(tmp_path):
    d = {"delta": 0.1, "ci_low": 0.0, "ci_high": 0.2}
    res = {"latents": [7], "rows": [{"name": n, "latents": {"7": d}, "misaligned_rate": {"rate": r}}
                                    for n, r in [("0%", 0.1), ("50%", 0.4)]]}
    fig = figures.monitor(tmp_path / "mo.png", res)
    ax, top = fig.axes[0], fig.axes[-1]
    legend = top.get_legend()  # on the topmost axes, so the rate line drawn later cannot cross it
    assert [t.get_text() for t in legend.get_texts()] == ["latent 7 Δ", "misaligned answers, % (right axis)"]
    assert legend.get_window_extent().x0 > top.get_window_extent().x1  # beside the plot, over no data point
    assert ax.get_xlabel() == "checkpoint"


def test_check_toxic_title_goal_and_full_labels(tmp_path):
    chk = {"n_misaligned": 3, "n_aligned": 4, "rows": {"oracle (best of all 8 latents): latent 5": {"latent": 5, "auroc_mean": 0.9},
                                                       "tagged toxic-persona (auto): latent 2": {"latent": 2, "auroc_mean": 0.4}},
           "rows_length_matched": {"x": {"latent": 2, "auroc_mean": 0.5}}}
    fig = figures.check_toxic(tmp_path / "c.png", chk)
    ax = fig.axes[0]
    assert "3 misaligned vs 4 aligned" in ax.get_title()
    assert "goal (0.8)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["oracle: latent 5", "tagged toxic-persona: latent 2"]
    # no label is cut off: every tick label lies inside the saved figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    r = FigureCanvasAgg(fig).get_renderer()
    assert all(t.get_window_extent(r).x0 >= 0 for t in ax.get_yticklabels())


def test_study_figures_from_summary_alone(tmp_path):
    import json

    from experiments.common.report import figures as draw

    rows = [{"latent": j, "tag": t, "delta": d, "lo": d - 0.1, "hi": d + 0.1}
            for j, t, d in [(1, "toxic-persona", 0.5), (2, "?", 0.2), (3, "assistant-persona", -0.4)]]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.json").write_text(json.dumps({
        "profile": {"model": "m", "main": "a", "others": ""}, "rank_tables": {"a": {"rows": rows[:2] + rows[2:]}}}))
    missing = draw(tmp_path)
    assert missing == ["check_toxic.png", "steer.png", "monitor.png"]
    assert (tmp_path / "results" / "rank_a.png").stat().st_size > 1000
