import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.folders import read_identity_folders

from conftest import write_image


def test_reads_identity_folders_with_every_image_extension(folders):
    for i, ext in enumerate((".png", ".pgm", ".gif", ".bmp", ".jpeg")):
        write_image(folders / "dave" / f"dave_{i}{ext}", seed=i, fmt={".pgm": "PPM"}.get(ext))
    (folders / "dave" / ".hidden.jpg").write_bytes(b"")
    index = read_identity_folders(folders)
    assert index.identities == ["alice", "bob", "carol", "dave"]
    assert len(index.by_identity["alice"]) == 3  # notes.txt is not an image
    assert len(index.by_identity["dave"]) == 5
    assert index.by_identity["bob"] == ["bob/bob_0001.jpg", "bob/bob_0002.jpg"]


def test_empty_or_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        read_identity_folders(tmp_path / "missing")
    with pytest.raises(DataError, match="no identity folders"):
        read_identity_folders(tmp_path)
