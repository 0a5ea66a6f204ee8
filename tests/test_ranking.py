"""1:N ranking by hand: each person scores as their best photo; best first; SAME at the threshold."""

from backbone.labels import DIFFERENT, SAME
from backbone.ranking import Match, rank_people


def test_people_rank_by_their_best_photo_and_ties_by_name():
    paths = ["ann/1", "ann/2", "bob/1", "cyd/1", "cyd/2"]
    person_of = {p: p.split("/")[0] for p in paths}
    matches, people = rank_people(paths, [0.2, 0.9, 0.5, 0.5, 0.1], person_of, top_k=3, threshold=0.5)
    assert people == 3
    assert matches == [Match("ann", 0.9, "ann/2", SAME), Match("bob", 0.5, "bob/1", SAME),
                       Match("cyd", 0.5, "cyd/1", SAME)]  # fmt: skip
    top, _ = rank_people(paths, [0.2, 0.9, 0.5, 0.5, 0.1], person_of, top_k=1, threshold=0.95)
    assert top == [Match("ann", 0.9, "ann/2", DIFFERENT)]
