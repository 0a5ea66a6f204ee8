"""Data layer. At the top: the identity index, image decoding and errors; ``synth.py`` makes the
synthetic twins. ``layouts/`` reads each data set layout, ``lists/`` the pair and triplet files,
``faces/`` aligns and caches faces for the datasets, ``checks/`` validates and analyzes."""

from backbone.data.errors import DataError, ImageReadError, Problem
from backbone.data.images import load_rgb
from backbone.data.index import IdentityIndex, ImageRecord
from backbone.data.layouts.lfw import read_lfw_people
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, read_pairs, write_pairs
from backbone.data.lists.sampling import all_pairs, generate_pairs, generate_triplets
from backbone.data.lists.splits import split_identities
from backbone.data.lists.triplets import Triplet, read_triplets, write_triplets

__all__ = [
    "DataError",
    "IdentityIndex",
    "ImageReadError",
    "ImageRecord",
    "Pair",
    "Problem",
    "Triplet",
    "all_pairs",
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
