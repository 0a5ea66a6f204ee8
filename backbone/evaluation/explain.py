"""Where a local-global model looks: attention maps over aligned faces, at the input's resolution."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from backbone.data.faces.transforms import eval_transform
from backbone.devices import exact_fp32
from backbone.models.local_global import LocalGlobalNet
from backbone.models.siamese import SiameseNet


@torch.inference_mode()
def attention_maps(model: SiameseNet, crops: Sequence[torch.Tensor], image_size: int) -> list[np.ndarray]:
    """The attention distribution of each uint8 crop (3xHxW), as an HxW array at the model's input size."""
    if not isinstance(model.net, LocalGlobalNet):
        raise ValueError("attention maps need a local-global model (model.attention set)")
    model.eval()
    transform = eval_transform(image_size)
    x = torch.stack([transform(c) for c in crops]).to(next(model.parameters()).device)
    with exact_fp32():
        out = model.net.forward_all(x, attention_size=(image_size, image_size))
    return [a[0].float().cpu().numpy() for a in out.attention]


def twin_examples(pairs, n: int) -> list[str]:
    """Image paths of the first ``n`` twin-negative pairs (both twins, side by side), else any pairs."""
    chosen = [p for p in pairs if p.twins][:n] or list(pairs)[:n]
    return [path for p in chosen for path in (p.path_a, p.path_b)]


def faces_and_maps(
    model: SiameseNet, faces: Callable[[str], torch.Tensor], paths: Sequence[str], image_size: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """uint8 HxWx3 faces resized to the model's input, and their attention maps."""
    crops = [faces(p) for p in paths]
    maps = attention_maps(model, crops, image_size)
    images = [F.resize(c, [image_size, image_size], antialias=True).permute(1, 2, 0).numpy() for c in crops]
    return images, maps


def title_of(path: str | Path) -> str:
    return Path(path).parent.name


def attention_figure(
    checkpoint: str | Path, pairs_file: str | Path | None = None, n_pairs: int = 6, device: str | None = "auto"
):
    """Faces of twin-negative test pairs above the attention of a local-global checkpoint (run on ``device``).

    The data root, alignment and face cache are the ones the checkpoint was trained with;
    ``pairs_file`` defaults to its test pairs."""
    from backbone.data.faces.cache import open_faces
    from backbone.data.layouts.load import load_index
    from backbone.data.lists.pairs import read_pairs
    from backbone.evaluation.checkpoints import checkpoint_align_config, checkpoint_data
    from backbone.models.build import load_model
    from backbone.plots import plot_attention_grid

    model, config, ckpt = load_model(checkpoint, device=device)
    data = checkpoint_data(ckpt)
    pairs_file = pairs_file or data.get("test_pairs") or data.get("val_pairs")
    if not pairs_file:
        raise ValueError(f"{checkpoint} names no test pairs: pass pairs_file")
    index = load_index(data.get("root", "."))
    paths = twin_examples(read_pairs(pairs_file, root=index.root), n_pairs)
    faces = open_faces(
        index.only_paths(paths),
        checkpoint_align_config(ckpt, config.image_size),
        cache_root=data.get("cache"),
        progress=False,
    )
    images, maps = faces_and_maps(model, faces, paths, config.image_size)
    return plot_attention_grid(images, maps, [title_of(p) for p in paths], cols=2 * min(n_pairs, 3))
