"""On a CUDA GPU (``gpu`` marker; they skip without one, as in CI): the data path, training and
every inference path run there, and give what the CPU gives.

Tolerances: where the GPU's numbers are compared with the CPU's, both compute in full fp32 (the
inference paths do, and eager references in a test run under ``backbone.devices.exact_fp32``),
and the bound is 1e-4 on a score or an embedding entry (two devices sum in different orders:
~1e-6). A training run's own numbers are not compared across devices: its batch
augmentation draws from the GPU's generator, and its steps run in TF32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backbone.data import load_index
from backbone.data.faces.align import AlignConfig, FaceAligner
from backbone.data.faces.batches import TensorBatches
from backbone.data.images import load_rgb
from backbone.devices import exact_fp32
from backbone.evaluation.checkpoints import checkpoint_embeddings, evaluate_checkpoint
from backbone.evaluation.verification import Verifier
from backbone.explorer import open_source
from backbone.training.config import TrainConfig
from backbone.training.data import build_training_data
from backbone.training.trainer import augmented, train

pytestmark = pytest.mark.gpu
GPU = torch.device("cuda:0")
BOUND = 1e-4


def on_gpu(module: torch.nn.Module) -> bool:
    return next(module.parameters()).device.type == "cuda"


def tiny_config(tiny_run, out, **settings) -> TrainConfig:
    """The tiny run's own config, trained again elsewhere with ``settings``."""
    cfg = TrainConfig.load(tiny_run / "config.yaml")
    return cfg.with_overrides([f"out_dir={out}", *(f"{k}={v}" for k, v in settings.items())])


def test_tensor_batches_on_the_gpu_are_the_cpus(tiny_run, tmp_path):
    """The same sampler draws, gathered on each device: the very same standardised batches."""
    cfg = tiny_config(tiny_run, tmp_path / "run", **{"data.augment": False, "loss.regime": "triplet",
                                                    "loss.m_per_class": 2, "loss.family_batches": True})  # fmt: skip
    drawn = []
    for device in ("cpu", GPU):
        data = build_training_data(cfg, progress=False, device=device)
        assert isinstance(data.loader, TensorBatches) and data.loader.device.type == torch.device(device).type
        data.generator.manual_seed(3)
        drawn.append([[x.cpu() for x in augmented(b, data.batch_transform)] for b in data.loader])
    cpu, gpu = drawn
    assert len(cpu) == len(gpu) > 0
    assert all(torch.equal(x, y) for a, b in zip(cpu, gpu) for x, y in zip(a, b))


@pytest.mark.parametrize("precision", ["auto", "bf16-mixed"])
def test_training_runs_on_the_gpu_from_tensors_on_the_gpu(tiny_run, tmp_path, precision):
    """`auto` trains in fp32 (TF32) with batch augmentation on the device; bf16-mixed trains too.
    A few steps of a tiny run prove little about learning: the losses must stay finite and not
    blow up (bf16 keeps 8 bits of mantissa, so no closer bound is asked of it)."""
    cfg = tiny_config(tiny_run, tmp_path / precision, epochs=3, steps_per_epoch=6, precision=precision)
    result = train(cfg, progress=False)
    saved = TrainConfig.load(tmp_path / precision / "config.yaml")
    assert saved.data.batch_augment is True and saved.data.loader == "auto"
    losses = [h["train_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] * 1.5
    assert result.test_metrics is not None and 0 <= result.test_metrics["auc"] <= 1


def test_evaluate_on_the_gpu_gives_the_cpus_scores(tiny_run, tmp_path):
    """Each device embeds afresh (its own embedding store), and the scores agree."""
    ckpt, pairs = tiny_run / "best.ckpt", tiny_run.parent / "test.tsv"
    with exact_fp32():
        gpu = evaluate_checkpoint(ckpt, pairs, cache=tmp_path / "gpu" / "faces", progress=False, device="cuda")
    cpu = evaluate_checkpoint(ckpt, pairs, cache=tmp_path / "cpu" / "faces", progress=False, device="cpu")
    assert on_gpu(gpu.model) and not on_gpu(cpu.model)
    assert gpu.evaluation.embedded == cpu.evaluation.embedded > 0
    assert np.abs(gpu.evaluation.scores - cpu.evaluation.scores).max() <= BOUND


def test_verify_explorer_and_teacher_run_on_the_gpu(tiny_run, tiny_synth, tmp_path):
    a, b = sorted(tiny_synth.glob("*/*.png"))[:2]
    index = load_index(tiny_synth)
    paths = [r.path for r in index.records[:6]]

    def teacher(device: str) -> torch.Tensor:
        cache = tmp_path / device / "faces"  # each device embeds afresh
        return checkpoint_embeddings(tiny_run / "best.ckpt", index, paths, cache, progress=False, device=device)

    with exact_fp32():
        gpu = Verifier.from_checkpoint(tiny_run / "best.ckpt", device="cuda")
        verdict = gpu.verify(a, b)
        source = open_source(run=tiny_run, progress=False, device="cuda")
        maps = source.attention([source.faces(source.review.current.pair.path_a)])
        gpu_teacher = teacher("cuda")
    cpu = Verifier.from_checkpoint(tiny_run / "best.ckpt", device="cpu")
    assert on_gpu(gpu.model) and gpu.aligner.device.type == "cuda"
    assert abs(verdict.score - cpu.verify(a, b).score) <= BOUND
    assert on_gpu(source.model) and len(maps) == 1 and abs(maps[0].sum() - 1) < 1e-3
    assert gpu_teacher.device.type == "cpu" and (gpu_teacher - teacher("cpu")).abs().max() <= BOUND


def test_mtcnn_runs_on_the_gpu_and_finds_what_the_cpu_finds(tiny_synth):
    images = [load_rgb(p) for p in sorted(tiny_synth.glob("*/*.png"))[:4]]
    config = AlignConfig(size=64, detector="mtcnn")
    gpu, cpu = FaceAligner(config, device="cuda"), FaceAligner(config, device="cpu")
    found_gpu, found_cpu = gpu.align(images), cpu.align(images)
    assert next(gpu.mtcnn.parameters()).device.type == "cuda"
    assert [d.crop is None for d in found_gpu] == [d.crop is None for d in found_cpu]
    for g, c in zip(found_gpu, found_cpu):
        if g.crop is not None:
            assert np.abs(np.array(g.box) - np.array(c.box)).max() < 1.0  # pixels


def test_the_service_runtime_runs_on_the_gpu(tiny_run, tiny_synth):
    from backbone.deploy.runtime import FaceModel, load_engine

    gpu, cpu = (FaceModel(load_engine(tiny_run / "best.ckpt", device)) for device in ("cuda", "cpu"))
    assert gpu.engine.device == "cuda:0" and cpu.engine.device == "cpu"
    crops = [gpu.face(load_rgb(p), p.name).crop for p in sorted(tiny_synth.glob("*/*.png"))[:3]]
    with exact_fp32():
        assert np.abs(gpu.embed(crops) - cpu.embed(crops)).max() <= BOUND
