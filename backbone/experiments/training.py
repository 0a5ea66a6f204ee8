"""One training experiment as notebooks 02 and 03 run it: its config from the notebook's
parameters, the training, the test summary, the figures and what the run shows. The two notebooks share all of it
and differ only in their loss's own parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from backbone.evaluation.findings import Findings, training_findings
from backbone.evaluation.metrics import summary_row
from backbone.experiments.analysis import training_report
from backbone.experiments.configs import experiment_config
from backbone.training import TrainConfig, TrainResult, train


@dataclass
class TrainingExperiment:
    """A training run of the workbook: ``config`` and, once trained, its ``result``."""

    config: TrainConfig
    result: TrainResult | None = None

    @classmethod
    def from_parameters(cls, *args: Any, **kwargs: Any) -> TrainingExperiment:
        """The experiment a notebook's parameters describe: the arguments of ``experiment_config``
        (out_dir, config_file, regime, attention, epochs, budget_images, seed, overrides). Its inputs
        must exist, so a notebook stops at this first cell saying what makes a missing one."""
        return cls(experiment_config(*args, **kwargs))

    def __str__(self) -> str:
        c = self.config
        training = (
            f"{c.loss.regime}, {c.epochs} epochs of {c.steps_per_epoch or 'all'} steps"
            if c.epochs
            else "no training (the initial model as it is)"
        )
        return f"{c.name}: {c.model.backbone} ({c.model.attention or 'global only'}), {training}"

    def train(self) -> TrainResult:
        """Train (an interrupted run resumes from ``last.ckpt``), then test the best checkpoint."""
        self.result = train(self.config)
        r = self.result
        best = f"{r.best_metric:.4f}" if r.best_metric is not None else "n/a"
        print(f"best validation {self.config.monitor} {best} at epoch {r.best_epoch}")
        return r

    def print_test_summary(self) -> None:
        """The best checkpoint's metrics on the test pairs."""
        if self.result is None or not self.result.test_metrics:
            raise ValueError(f"{self.config.name} has no test metrics: train it first (with data.test_pairs set)")
        for key, value in summary_row(self.result.test_metrics).items():
            print(f"{key:18s} {value:.4f}")

    def figures(self) -> dict[str, Figure]:
        """Loss and AUC per epoch, ROC, F1 vs threshold, score distributions and the confusion at the
        validation threshold (saved under the run)."""
        return training_report(self.config.out_dir)

    def findings(self) -> Findings:
        """What the run shows, in a few sentences read from its ``metrics.json`` and ``history.json``."""
        return training_findings(self.config.out_dir)
