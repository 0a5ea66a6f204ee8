"""Training regimes, one class each, registered by name in ``REGIMES``.

A regime knows what one training batch is (its ``forward(*batch)`` returns the loss), the training
set and sampler that make such batches (``training_set``), how many images a batch holds
(``images_per_batch``: the experiment budget counts images) and any model setting it needs
(``configure_model``). Adding one is one class in one file with ``@REGIMES.register("name")``,
imported below. The regimes: ``contrastive`` and ``pair-bce`` (``pairs.py``), ``triplet``
(``triplet.py``), ``arcface`` and ``cosface`` (``margin.py``), ``distill`` (``distill.py``).
"""

from backbone.training.regimes import distill, margin, pairs, triplet  # noqa: F401  (they register themselves)
from backbone.training.regimes.base import REGIMES, Regime, TrainingInputs, TrainingSet

__all__ = ["REGIMES", "Regime", "TrainingInputs", "TrainingSet"]
