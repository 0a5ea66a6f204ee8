"""Evaluation: from a model and pairs to numbers and pictures.

``metrics`` (verification metrics and the fixed-threshold rule), ``embeddings`` (embed every
unique image once, score pairs, the embedding store), ``scores`` (score files), ``checkpoints``
(a trained checkpoint on a pair list, with its training alignment), ``verification`` (two images
through a model) and ``explain`` (attention maps of the local-global network).
"""
