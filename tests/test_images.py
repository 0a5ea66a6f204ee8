import numpy as np
import pytest
from PIL import Image

from backbone.data.errors import ImageReadError
from backbone.data.images import is_image_file, load_rgb, load_rgb_array

from conftest import write_image


@pytest.mark.parametrize(
    "mode, ext",
    [
        ("L", ".png"),
        ("P", ".gif"),
        ("RGBA", ".png"),
        ("LA", ".png"),
        ("CMYK", ".jpg"),
        ("1", ".bmp"),
        ("L", ".pgm"),
        ("RGB", ".bmp"),
    ],
)
def test_every_mode_loads_as_rgb(tmp_path, mode, ext):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8), "RGB")
    path = tmp_path / f"img{ext}"
    rgb.convert(mode).save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.size == (12, 10)


def test_sixteen_bit_grayscale_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    arr = load_rgb_array(path)
    assert arr[0, :, 0].tolist() == [0, 100, 255]


def test_transparent_pixels_become_black(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, 0, 3] = 255
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_rgb_array(path)
    assert arr[0, 0].tolist() == [200, 200, 200] and arr[1, 1].tolist() == [0, 0, 0]


def test_bad_files_name_the_file_and_reason(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg at all")
    good = write_image(tmp_path / "good.jpg", size=64)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path, reason in [
        (empty, "zero-byte"),
        (junk, "not a recognised"),
        (truncated, "truncated"),
        (tmp_path / "nope.png", "no such file"),
    ]:
        with pytest.raises(ImageReadError, match=reason) as info:
            load_rgb(path)
        assert str(path) in str(info.value)


def test_image_extensions():
    from pathlib import Path

    assert is_image_file(Path("a/B.JPG")) and is_image_file(Path("x.pgm"))
    assert not is_image_file(Path("notes.txt")) and not is_image_file(Path(".hidden.jpg"))
