import json
import shutil

import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.ndtwin import read_twin_folders, twin_group_name


def test_twin_groups_from_pairs_json(folders):
    (folders / "pairs.json").write_text(json.dumps([["bob", "alice"]]))
    index = read_twin_folders(folders)
    assert index.groups == {"alice+bob": ["alice", "bob"]}
    assert index.siblings("alice") == ["bob"] and index.group_of["carol"] is None
    assert twin_group_name("b", "a") == twin_group_name("a", "b")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([["alice", "zed"]], "'zed' has no images"),
        ([["alice", "alice"]], "its own twin"),
        ([["alice", "bob"], ["bob", "carol"]], "already a twin"),
        ([["alice"]], "expected \\[folderA, folderB\\]"),
    ],
)
def test_bad_twin_entries_are_reported_with_their_position(folders, entries, message):
    (folders / "pairs.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match=message) as info:
        read_twin_folders(folders)
    assert "pairs.json entry" in str(info.value)


def test_invalid_json_names_the_line(folders):
    (folders / "pairs.json").write_text('[\n["alice", "bob"],\n')
    with pytest.raises(DataError, match=r"pairs.json:\d+: not valid JSON"):
        read_twin_folders(folders)


def test_synthetic_set_is_an_ndtwin_set(tiny_synth, tmp_path):
    index = read_twin_folders(tiny_synth)
    assert len(index.groups) == 4 and len(index.by_identity) == 12
    copy = tmp_path / "copy"
    shutil.copytree(tiny_synth, copy)
    (copy / "pairs.json").unlink()
    with pytest.raises(DataError, match="does not exist"):
        read_twin_folders(copy)
