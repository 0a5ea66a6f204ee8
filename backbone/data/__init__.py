"""Data layer: the identity index, readers for each layout, pair/triplet files, splits, validation."""

from backbone.data.errors import DataError, ImageReadError, Problem
from backbone.data.images import load_rgb
from backbone.data.index import IdentityIndex, ImageRecord
from backbone.data.lfw import read_lfw_people
from backbone.data.load import load_index
from backbone.data.pairs import Pair, read_pairs, write_pairs
from backbone.data.sampling import generate_pairs, generate_triplets
from backbone.data.splits import split_identities
from backbone.data.triplets import Triplet, read_triplets, write_triplets

__all__ = [
    "DataError",
    "IdentityIndex",
    "ImageReadError",
    "ImageRecord",
    "Pair",
    "Problem",
    "Triplet",
    "generate_pairs",
    "generate_triplets",
    "load_index",
    "load_rgb",
    "read_lfw_people",
    "read_pairs",
    "read_triplets",
    "split_identities",
    "write_pairs",
    "write_triplets",
]
