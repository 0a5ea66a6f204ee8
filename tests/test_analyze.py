import json

import numpy as np
from PIL import Image

from backbone.data.checks.analyze import analyze_dataset, pixel_baseline
from backbone.data.layouts.folders import read_identity_folders
from backbone.data.layouts.ndtwin import read_twin_folders


def test_counts_distribution_sizes_and_modes(folders):
    report = analyze_dataset(read_identity_folders(folders), progress=False)
    assert (report["images"], report["identities"], report["groups"]) == (6, 3, 0)
    ipi = report["images_per_identity"]
    assert (ipi["min"], ipi["median"], ipi["max"]) == (1, 2.0, 3)
    assert ipi["histogram"]["1"] == 1 and ipi["histogram"]["2"] == 1 and ipi["histogram"]["3-5"] == 1
    assert report["image_properties"]["sizes"] == {"24x24": 6}
    assert report["image_properties"]["modes"] == {"RGB": 6}
    assert "pixel_baseline" not in report
    json.dumps(report)


def test_twin_data_gets_a_pixel_baseline(tiny_synth):
    report = analyze_dataset(read_twin_folders(tiny_synth), progress=False)
    base = report["pixel_baseline"]
    assert 0.0 <= base["auc_twin_negatives"] <= 1.0 and 0.0 <= base["auc_random_negatives"] <= 1.0
    assert report["identities_in_groups"] == 8


def test_pixel_baseline_separates_families_but_not_twins(tmp_path):
    # Each family has its own stripe pattern, twins share it exactly, photos differ by noise:
    # random negatives are separable (AUC near 1), twins are not (AUC near 0.5).
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    patterns = [xx % 8 < 4, yy % 8 < 4, (xx + yy) % 8 < 4, (xx // 4 + yy // 4) % 2 == 0]
    for k, pattern in enumerate(patterns):
        for name in (f"p{k}a", f"p{k}b"):
            (tmp_path / name).mkdir()
            for i in range(6):
                arr = np.clip(pattern * 160.0 + 40 + rng.normal(0, 20, (16, 16)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).convert("RGB").save(tmp_path / name / f"{name}_{i}.png")
    (tmp_path / "pairs.json").write_text(json.dumps([[f"p{k}a", f"p{k}b"] for k in range(4)]))
    base = pixel_baseline(read_twin_folders(tmp_path), n_pairs=80, size=16, progress=False)
    assert base["pairs"] == 80
    assert base["auc_random_negatives"] > 0.95
    assert 0.3 < base["auc_twin_negatives"] < 0.7
