"""The widget layer driven from Python (no browser): each control changes what is shown."""

import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from backbone.explorer import PairExplorer, open_run


@pytest.fixture(scope="module")
def explorer(tiny_run):
    return PairExplorer(open_run(tiny_run, progress=False))


def png(path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, content: bytes) -> tuple[dict]:
    """What FileUpload.value holds after a user picks one file."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.now(UTC),
        },
    )


def shown(image) -> bytes:
    return bytes(image.value)


def test_first_view_shows_a_pair_its_verdict_and_the_metrics(explorer):
    assert shown(explorer.face_a).startswith(b"\x89PNG") and shown(explorer.face_b).startswith(b"\x89PNG")
    chosen = explorer.review.threshold  # the run's threshold, chosen on its validation pairs
    assert "similarity" in explorer.verdict.value and f"threshold {chosen:.4f}" in explorer.verdict.value
    assert "FAR" in explorer.metrics.value and shown(explorer.roc).startswith(b"\x89PNG")
    assert "pair <b>1</b> of 40 all" in explorer.position.value
    assert explorer.previous.disabled and not explorer.next.disabled
    assert not explorer.attention.disabled


def test_next_previous_and_jump_change_the_pair(explorer):
    first = (shown(explorer.face_a), explorer.caption_a.value, explorer.verdict.value)
    explorer.next.click()
    assert "pair <b>2</b> of 40" in explorer.position.value and explorer.jump.value == 2
    assert (shown(explorer.face_a), explorer.caption_a.value, explorer.verdict.value) != first
    explorer.previous.click()
    assert (shown(explorer.face_a), explorer.caption_a.value, explorer.verdict.value) == first
    explorer.jump.value = 40
    assert "pair <b>40</b> of 40" in explorer.position.value and explorer.next.disabled


def test_the_threshold_slider_updates_verdicts_metrics_and_roc(explorer):
    explorer.filter.value = "all"
    explorer.threshold.value = explorer.threshold.min  # accept everything
    low = (explorer.metrics.value, shown(explorer.roc), explorer.counts.value, explorer.verdict.value)
    assert explorer.review.metrics()["frr"] == 0.0 and "false rejects <b>0</b>" in explorer.counts.value
    assert ">SAME</b>" in explorer.verdict.value
    explorer.threshold.value = explorer.threshold.max  # reject everything
    high = (explorer.metrics.value, shown(explorer.roc), explorer.counts.value, explorer.verdict.value)
    assert explorer.review.metrics()["far"] == 0.0 and "false accepts <b>0</b>" in explorer.counts.value
    assert ">DIFFERENT</b>" in explorer.verdict.value
    assert all(a != b for a, b in zip(low, high))
    explorer.threshold.value = 0.6


def test_filters_show_only_their_pairs(explorer):
    explorer.filter.value = "twin negatives"
    n = explorer.review.counts()["twin negatives"]
    assert n > 0 and explorer.review.current.pair.twins and f"of {n} twin negatives" in explorer.position.value
    explorer.filter.value = "false accepts"
    n = explorer.review.counts()["false accepts"]
    assert (explorer.review.current is None) == (n == 0)
    explorer.filter.value = "all"


def test_attention_toggle_overlays_both_faces(explorer):
    plain = (shown(explorer.face_a), shown(explorer.face_b))
    explorer.attention.value = True
    overlaid = (shown(explorer.face_a), shown(explorer.face_b))
    explorer.attention.value = False
    assert overlaid[0] != plain[0] and overlaid[1] != plain[1]
    assert (shown(explorer.face_a), shown(explorer.face_b)) == plain


def test_verify_panel_messages(explorer, tiny_synth):
    panel = explorer.verify_panel
    panel.button.click()
    assert "choose image A" in panel.result.value
    panel.path_a.value = "twin000a/twin000a_0001.png"
    panel.upload_b.value = upload("broken.jpg", b"nope")
    panel.button.click()
    assert "cannot read image broken.jpg" in panel.result.value and shown(panel.face_a) == b""
    panel.upload_b.value = upload("mine.png", png(tiny_synth / "twin000a" / "twin000a_0002.png"))
    panel.button.click()
    assert "similarity" in panel.result.value and shown(panel.face_a).startswith(b"\x89PNG")
