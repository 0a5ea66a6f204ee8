from backbone.data.checks.validate import validate_dataset
from backbone.data.lists.pairs import Pair, write_pairs
from backbone.data.lists.triplets import Triplet, write_triplets
from backbone.labels import DIFFERENT, SAME


def kinds(report):
    return sorted((f.severity, f.kind) for f in report.findings)


def test_clean_data_set_passes_and_single_image_is_a_warning(folders):
    report = validate_dataset(folders, progress=False)
    assert report.images == 6 and report.identities == 3
    assert kinds(report) == [("warning", "single-image")]
    assert report.ok() and not report.ok(strict=True)


def test_every_bad_image_is_found(folders):
    (folders / "bob" / "bob_0003.jpg").write_bytes(b"")
    (folders / "bob" / "bob_0004.jpg").write_bytes(b"garbage")
    good = (folders / "alice" / "alice_0001.jpg").read_bytes()
    (folders / "alice" / "alice_0009.jpg").write_bytes(good[: len(good) // 2])
    report = validate_dataset(folders, workers=1, progress=False)
    errors = {f.problem.path.rsplit("/", 1)[-1]: f.kind for f in report.errors}
    assert errors == {"bob_0003.jpg": "zero-byte", "bob_0004.jpg": "unreadable", "alice_0009.jpg": "unreadable"}
    assert not report.ok()


def test_pair_file_problems_carry_file_and_line(folders, tmp_path):
    pairs = [
        Pair("alice/alice_0001.jpg", "alice/alice_0002.jpg", SAME),  # line 2, fine
        Pair("alice/alice_0001.jpg", "alice/alice_0007.jpg", SAME),  # line 3, missing image
        Pair("alice/alice_0001.jpg", "zed/zed_0001.jpg", DIFFERENT),  # line 4, unknown person
        Pair("alice/alice_0001.jpg", "bob/bob_0001.jpg", SAME),  # line 5, label contradicts people
        Pair("alice/alice_0002.jpg", "alice/alice_0001.jpg", SAME),  # line 6, repeats line 2
    ]
    pair_file = tmp_path / "p.tsv"
    write_pairs(pairs, pair_file)
    report = validate_dataset(folders, [pair_file], decode=False)
    found = sorted((f.kind, f.problem.line) for f in report.findings if f.problem.path == str(pair_file))
    assert found == [("missing-image", 3), ("repeated-pair", 6), ("unknown-person", 4), ("wrong-label", 5)]


def test_malformed_lines_and_triplets(folders, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nalice\t1\t2\nalice\t1\n")
    triplets = tmp_path / "t.tsv"
    write_triplets([Triplet("alice/alice_0001.jpg", "alice/alice_0002.jpg", "nobody/nobody_0001.jpg")], triplets)
    report = validate_dataset(folders, [bad, triplets, tmp_path / "absent.tsv"], decode=False)
    found = sorted((f.kind, f.problem.path.rsplit("/", 1)[-1], f.problem.line) for f in report.errors)
    assert found == [
        ("malformed-line", "absent.tsv", None),
        ("malformed-line", "bad.txt", 3),
        ("unknown-person", "t.tsv", 2),
    ]


def test_broken_index_is_reported_not_raised(folders):
    (folders / "pairs.json").write_text('[["alice", "nobody"]]')
    report = validate_dataset(folders, progress=False)
    assert [f.kind for f in report.errors] == ["index"] and "nobody" in str(report.errors[0])
