"""The stress set: each condition by hand, the set written and resumed, its table, CSV and figure."""

import json

import numpy as np
import pytest
from PIL import Image

from backbone.data.faces.align import FaceCounts
from backbone.data.lists.pairs import Pair, read_pairs
from backbone.data.stress import (
    CONDITIONS,
    FACE_FRACTION,
    exposure,
    gamma,
    grayscale,
    low_res,
    shadow,
    shadow_side,
    stressed_path,
    write_stress_set,
)
from backbone.evaluation.stress import StressRow, read_rows, stress_table, write_rows
from backbone.labels import DIFFERENT, SAME
from backbone.plots import plot_stress


def flat(value: int, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


def test_each_condition_by_hand():
    assert np.asarray(gamma(flat(128), 2.0))[0, 0, 0] == round(255 * (128 / 255) ** 2)  # 64
    assert np.asarray(exposure(flat(200), 0.25))[0, 0, 0] == 50
    left_path, right_path = (next(p for p in (f"p/{i}.jpg" for i in range(20)) if shadow_side(p) == k) for k in (0, 1))
    left = np.asarray(shadow(flat(200), 0.1, left_path))
    assert left[0, 0, 0] == 20 and left[0, -1, 0] == 200  # the dark side, then full light
    right = np.asarray(shadow(flat(200), 0.1, right_path))
    assert right[0, 0, 0] == 200 and right[0, -1, 0] == 20
    colour = Image.new("RGB", (4, 4), (200, 100, 50))
    grey = np.asarray(grayscale(colour))
    assert (grey[..., 0] == grey[..., 1]).all() and grey[0, 0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    small = low_res(flat(100, (250, 250)), 45)  # the face, FACE_FRACTION of 250 px, down to 45 px
    assert small.size == (round(250 * 45 / (FACE_FRACTION * 250)),) * 2 == (125, 125)
    assert low_res(flat(100, (50, 50)), 60).size == (50, 50)  # never scaled up
    for name in CONDITIONS.names():  # every strength keeps a plain image's size (low-res: smaller)
        for strength in CONDITIONS.info(name)["strengths"]:
            out = CONDITIONS.get(name)(flat(90, (250, 250)), strength, "a/b.jpg")
            assert out.mode == "RGB" and (out.size == (250, 250) or name == "low-res")


def test_the_set_keeps_every_pair_and_label_and_a_rerun_writes_nothing(tmp_path):
    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for person in ("Ann", "Bob"):
        (root / person).mkdir(parents=True)
        for i in (1, 2):
            Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(root / person / f"{person}_{i}.jpg")
    pairs = [Pair("Ann/Ann_1.jpg", "Ann/Ann_2.jpg", SAME), Pair("Ann/Ann_1.jpg", "Bob/Bob_2.jpg", DIFFERENT)]
    sets = write_stress_set(root, pairs, tmp_path / "stress", ["gamma", "jpeg"], progress=False)
    assert [s.name for s in sets] == ["gamma-2", "gamma-3", "jpeg-15", "jpeg-5"]
    for s in sets:
        listed = read_pairs(s.pairs_file, root=s.root)
        assert [(p.path_a, p.path_b, p.same) for p in listed] == [
            (stressed_path(s.condition, p.path_a), stressed_path(s.condition, p.path_b), p.same) for p in pairs
        ]
    assert (sets[0].root / "Ann" / "Ann_1.png").is_file() and (sets[2].root / "Ann" / "Ann_1.jpg").is_file()
    with Image.open(sets[3].root / "Bob" / "Bob_2.jpg") as img:
        assert img.format == "JPEG"
    index = json.loads((tmp_path / "stress" / "stress.json").read_text())
    assert index["pairs"] == 2 and index["images"] == 3 and [s["name"] for s in index["sets"]] == [s.name for s in sets]
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "stress").rglob("*.png")}
    write_stress_set(root, pairs, tmp_path / "stress", ["gamma", "jpeg"], progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "stress").rglob("*.png")} == written


def rows() -> list[StressRow]:
    faces = FaceCounts(4, 3, 1, "mtcnn", "fallback")
    return [
        StressRow("a", "none", 0.0, "", 2, 0.9, 0.05, 0.75, 0.2, 0.5, faces),
        StressRow("a", "blur", 2.0, "sigma, px", 2, 0.8, 0.06, 0.5, 0.25, 0.5, faces),
        StressRow("b", "none", 0.0, "", 2, 1.0, 0.0, 1.0, 0.0, -0.6, FaceCounts(4, 4, 0, "dlib-hog", "fallback")),
    ]


def test_the_table_csv_and_figure(tmp_path):
    write_rows(rows(), tmp_path / "stress.csv")
    assert read_rows(tmp_path / "stress.csv") == rows()  # numbers as numbers, faces as FaceCounts
    table = stress_table(rows()).splitlines()
    assert table[0] == ("| condition | a: AUC ± SE | a: accuracy ± SE | a: fell back | b: AUC ± SE | b: accuracy ± SE "
                        "| b: fell back |")  # fmt: skip
    assert (
        table[2]
        == "| clean | 0.9000 ± 0.0500 | 0.7500 ± 0.2000 | 1 of 4 | 1.0000 ± 0.0000 | 1.0000 ± 0.0000 | 0 of 4 |"
    )
    assert table[3] == "| blur 2 (sigma, px) | 0.8000 ± 0.0600 | 0.5000 ± 0.2500 | 1 of 4 | n/a | n/a | n/a |"
    fig = plot_stress(rows())
    panel = fig.axes[0]
    assert panel.get_title() == "blur" and [t.get_text() for t in panel.get_xticklabels()] == ["clean", "2"]


@pytest.mark.slow
def test_dlib_natives_rows_take_one_threshold_from_the_clean_validation_pairs(tmp_path):
    pytest.importorskip("dlib")
    from backbone.data.lists.pairs import write_pairs
    from backbone.evaluation.stress import StressPlan, run_stress

    root = tmp_path / "faces"
    rng = np.random.default_rng(1)
    for person in ("Ann", "Bob", "Cy"):
        (root / person).mkdir(parents=True)
        for i in (1, 2):
            Image.fromarray(rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)).save(root / person / f"{person}_{i}.jpg")
    pairs = [Pair(f"{a}/{a}_1.jpg", f"{a}/{a}_2.jpg", SAME) for a in ("Ann", "Bob", "Cy")]
    pairs += [Pair("Ann/Ann_1.jpg", "Bob/Bob_1.jpg", DIFFERENT), Pair("Bob/Bob_2.jpg", "Cy/Cy_1.jpg", DIFFERENT)]
    write_pairs(pairs, tmp_path / "test.tsv")
    write_pairs(pairs[::-1], tmp_path / "val.tsv")
    plan = StressPlan(root, tmp_path / "test.tsv", tmp_path / "val.tsv", tmp_path / "set", {}, conditions=("blur",))
    found = run_stress(plan, progress=False).rows
    assert [(r.condition, r.strength) for r in found] == [("none", 0.0), ("blur", 2.0), ("blur", 4.0)]
    assert len({r.threshold for r in found}) == 1 and all(r.pairs == 5 for r in found)
    assert all(r.faces.images == 6 and r.faces.fallback == 6 - r.faces.detected for r in found)
