import torch
from torch.utils.data import DataLoader

from backbone.data import generate_pairs, generate_triplets, load_index
from backbone.data.faces.datasets import FaceDataset, PairDataset, TripletDataset
from backbone.data.faces.transforms import eval_transform
from backbone.labels import SAME


def fake_faces(path: str) -> torch.Tensor:
    """A face source that encodes the path's image number, to check what the datasets return."""
    return torch.full((3, 8, 8), int(path[-8:-4]), dtype=torch.uint8)


def test_face_dataset_labels_follow_sorted_identities(tiny_synth):
    index = load_index(tiny_synth)
    ds = FaceDataset(index, fake_faces)
    assert len(ds) == 48 and ds.classes == index.identities
    x, label = ds[5]
    assert ds.classes[label] == index.records[5].identity and x[0, 0, 0] == int(index.records[5].path[-8:-4])


def test_pair_and_triplet_datasets_batch(tiny_synth):
    index = load_index(tiny_synth)
    pairs = generate_pairs(index, 20, seed=1)
    ds = PairDataset(pairs, fake_faces, eval_transform())
    a, b, same = next(iter(DataLoader(ds, batch_size=20)))
    assert a.shape == (20, 3, 8, 8) and a.dtype == torch.float32
    assert same.tolist() == [p.same for p in pairs] and same.sum() == 10 and SAME == 1
    trip = TripletDataset(generate_triplets(index, 6, seed=1), fake_faces)
    assert [t.shape for t in trip[0]] == [(3, 8, 8)] * 3
