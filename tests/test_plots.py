import numpy as np
import pytest
from matplotlib.figure import Figure

from backbone.evaluation.metrics import verification_metrics
from backbone.labels import DIFFERENT, SAME
from backbone.plots import (
    overlay_attention,
    plot_accuracy_bars,
    plot_attention_grid,
    plot_confusion,
    plot_f1,
    plot_history,
    plot_image_grid,
    plot_roc,
    plot_score_histograms,
    plot_seed_spread,
    save_figure,
)


def test_every_figure_draws_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([SAME] * 20 + [DIFFERENT] * 20)
    scores = rng.normal(labels * 0.5, 0.3)
    twins = np.array([False] * 30 + [True] * 10)
    m = verification_metrics(scores, labels, twins=twins)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(4)]
    figures = [
        plot_history(
            [{"epoch": 1, "train_loss": 1.0, "val_auc": 0.6}, {"epoch": 2, "train_loss": 0.8, "val_auc": 0.7}]
        ),
        plot_roc({"a": m, "b": m}),
        plot_roc({"a": m}, log_far=True),
        plot_f1({"a": m}),
        plot_score_histograms({"a": (scores, labels, twins), "b": (scores, labels, None)}),
        plot_image_grid(images, ["x"] * 4, cols=3),
        plot_attention_grid(images, [rng.random((16, 16)) for _ in images], ["x"] * 4, cols=2),
        plot_confusion(m["best"]),
        plot_seed_spread(
            [
                {"attention": "cbam", "twin_aucs": [0.5, 0.52], "other_aucs": [0.9, 0.95]},
                {"attention": "none (global only)", "twin_aucs": [0.49, None], "other_aucs": [0.91, 0.9]},
            ]
        ),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    paths = save_figure(figures[1], tmp_path / "figures" / "roc")
    assert [p.name for p in paths] == ["roc.png"] and paths[0].stat().st_size > 1000  # PNG only by default
    paths = save_figure(figures[1], tmp_path / "figures" / "roc", formats=("png", "svg"))
    assert [p.name for p in paths] == ["roc.png", "roc.svg"] and all(p.stat().st_size > 1000 for p in paths)


def test_figure_formats_come_from_the_environment(monkeypatch):
    from backbone.plots import figure_formats

    monkeypatch.delenv("BACKBONE_FIGURE_FORMATS", raising=False)
    assert figure_formats() == ("png",)
    monkeypatch.setenv("BACKBONE_FIGURE_FORMATS", "png, SVG")
    assert figure_formats() == ("png", "svg")
    monkeypatch.setenv("BACKBONE_FIGURE_FORMATS", "gif")
    with pytest.raises(ValueError, match="BACKBONE_FIGURE_FORMATS='gif': use png, svg or pdf"):
        figure_formats()


def test_accuracy_bars_put_the_best_run_on_top_and_leave_out_runs_without_a_validation_threshold():
    def row(name, accuracy, attention="none (global only)", pretrained="none"):
        return {"experiment": name, "accuracy_at_val_threshold": accuracy, "accuracy_at_val_threshold_se": 0.01,
                "attention": attention, "pretrained_on": pretrained}  # fmt: skip

    fig = plot_accuracy_bars([row("a", 0.7), row("b", 0.9, "cbam"), row("c", None), row("d", 0.8, pretrained="dlib")])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "d", "b"]  # bottom to top: the best on top
    assert [round(p.get_width(), 6) for p in ax.patches[:3]] == [70.0, 80.0, 90.0]
    assert [p.get_hatch() for p in ax.patches[:3]] == [None, "//", None] or [p.get_hatch() for p in ax.patches[:3]] == [
        "",
        "//",
        "",
    ]


def test_overlay_attention_keeps_the_image_shape():
    img = np.full((8, 8, 3), 100, np.uint8)
    att = np.zeros((8, 8))
    att[2, 3] = 1
    out = overlay_attention(img, att)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out[2, 3], out[0, 0])


def test_saving_the_same_figure_twice_gives_the_same_bytes(tmp_path):
    m = verification_metrics(np.array([0.9, 0.2, 0.7, 0.4]), np.array([SAME, DIFFERENT, SAME, DIFFERENT]))
    a = save_figure(plot_roc({"a": m}), tmp_path / "a")
    b = save_figure(plot_roc({"a": m}), tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_palette_png_keeps_the_size_in_a_palette_is_smaller_and_leaves_a_palette_alone():
    import io

    from PIL import Image

    from backbone.plots import palette_png

    photo = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)  # noise: every colour
    raw = io.BytesIO()
    Image.fromarray(photo).save(raw, format="PNG")
    slim = palette_png(raw.getvalue(), colours=64)
    with Image.open(io.BytesIO(slim)) as img:
        assert img.size == (200, 120) and img.mode == "P" and len(img.getcolors()) <= 64
    assert len(slim) < len(raw.getvalue()) / 2
    assert palette_png(slim) == slim  # already a palette: as it is


def test_figures_are_saved_in_a_palette_and_made_outside_pyplot(tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    m = verification_metrics(np.array([0.9, 0.2, 0.7, 0.4]), np.array([SAME, DIFFERENT, SAME, DIFFERENT]))
    before = plt.get_fignums()
    fig = plot_roc({"a": m})
    assert plt.get_fignums() == before  # not registered: a notebook shows it once, as the cell's value
    (path,) = save_figure(fig, tmp_path / "roc")
    with Image.open(path) as img:
        assert img.mode == "P" and img.size[0] > 500
