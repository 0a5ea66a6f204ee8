"""Pair and triplet lists: their file formats (TSV, LFW), drawing them from an index, and
identity-disjoint splits that keep twin siblings together."""
