import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.celeba import read_celeba

from conftest import write_image


def make_celeba(root, lines):
    for i in range(1, 4):
        write_image(root / "img_align_celeba" / f"{i:06d}.jpg", seed=i)
    (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return root


def test_reads_identities(tmp_path):
    root = make_celeba(tmp_path, ["000001.jpg 2880", "000002.jpg 2880", "000003.jpg 17"])
    index = read_celeba(root)
    assert index.by_identity == {
        "17": ["img_align_celeba/000003.jpg"],
        "2880": ["img_align_celeba/000001.jpg", "img_align_celeba/000002.jpg"],
    }
    assert (index.root / index.records[0].path).is_file()


def test_malformed_lines_and_missing_images_are_all_listed(tmp_path):
    root = make_celeba(tmp_path, ["000001.jpg 2880", "000002.jpg", "000009.jpg 5", "000003.jpg x"])
    with pytest.raises(DataError) as info:
        read_celeba(root)
    text = str(info.value)
    assert "3 bad lines" in text
    assert "identity_CelebA.txt:2" in text and "identity_CelebA.txt:3" in text and "identity_CelebA.txt:4" in text
    assert "000009.jpg does not exist" in text
