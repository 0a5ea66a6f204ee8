import json

from backbone.data.layouts.load import detect_kind, load_index

from conftest import write_image


def test_detects_each_layout(tmp_path, folders, tiny_synth):
    assert detect_kind(folders) == "folders"
    assert detect_kind(tiny_synth) == "twins"
    lfw = tmp_path / "lfwcopy"
    write_image(lfw / "lfw-deepfunneled" / "Ann" / "Ann_0001.jpg")
    assert detect_kind(lfw) == "lfw"
    assert load_index(lfw).identities == ["Ann"]
    celeba = tmp_path / "celeba"
    write_image(celeba / "img_align_celeba" / "000001.jpg")
    (celeba / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    assert detect_kind(celeba) == "celeba"
    assert load_index(celeba).identities == ["1"]
    (folders / "pairs.json").write_text(json.dumps([["alice", "bob"]]))
    assert load_index(folders, kind="folders").groups == {}
    assert load_index(folders).groups == {"alice+bob": ["alice", "bob"]}
