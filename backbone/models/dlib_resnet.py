"""dlib's face recognition ResNet in PyTorch, with a reader of dlib's own ``.dat`` file that fills its weights.

The network is the one of dlib's ``dnn_face_recognition_ex.cpp`` (``anet_type``), shipped as
``dlib_face_recognition_resnet_model_v1.dat`` by the PyPI package ``face-recognition-models``. It maps a
150x150 RGB face chip to a 128-d descriptor, exactly as ``dlib.face_recognition_model_v1(path)
.compute_face_descriptor(chip)`` does (the descriptor is the raw output of the last layer: not L2-normalised).

Architecture (29 convolutions; shapes for one 150x150 chip)::

    input_rgb_image_sized<150>   x = (pixel - mean[channel]) / 256, RGB, mean = (122.782, 117.001, 104.298)
    con 32 7x7 /2, affine, relu  -> 32 x 72 x 72     (a strided dlib con_ has no padding)
    max_pool 3x3 /2              -> 32 x 35 x 35     (no padding either)
    alevel4: 3 x ares 32         -> 32 x 35 x 35
    alevel3: ares_down 64, 3 x ares 64     -> 64 x 17 x 17
    alevel2: ares_down 128, 2 x ares 128   -> 128 x 8 x 8
    alevel1: ares_down 256, 2 x ares 256   -> 256 x 4 x 4
    alevel0: ares_down 256                 -> 256 x 2 x 2
    avg_pool_everything, fc_no_bias 128    -> 128

    ares N:      relu(x + block(x))
    ares_down N: relu(add_prev(avg_pool 2x2 /2 (x), block/2(x)))
    block:       affine(con N 3x3 /1 (relu(affine(con N 3x3 /stride (x)))))

dlib's conventions that matter: ``con_<N,nr,nc,sy,sx>`` pads ``nr/2`` when its stride is 1 and 0 otherwise (pools
likewise); ``affine_`` is a per-channel ``gamma * x + beta`` (a batch norm folded for inference); ``add_prev_``
adds two tensors of different shapes by zero-padding each to the larger channel count, height and width at the
end. The last matters twice: the shortcut of ``ares_down`` has fewer channels than the block, and from 8x8
the strided convolution gives 3x3 where the average pool gives 4x4 (from 4x4: 1x1 against 2x2), so the block's
output only covers the top-left corner.

The file is ``dlib::serialize(anet_type)``: integers are a control byte (size in the low 4 bits, 0x80 for
negative) and that many little-endian bytes; a floating point scalar is an integer mantissa and an integer
exponent (``mantissa * 2**exponent``); a string is its length and its bytes; a tensor (version 2) is
``n, k, nr, nc`` and that many little-endian float32. Layers nest: each ``add_layer`` writes its version, then
its whole subnetwork, then its own details (a name such as ``con_4`` and its fields), three flags and its
cached tensors. So the file reads: the loss layer, the versions of every layer from the top down (``tag`` and
``skip`` layers write only a version), the input layer, then every layer's details from the bottom up. The
reader follows the network above and refuses anything else with a :class:`CheckpointError` naming the file, the
byte offset, what was expected and what was found.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backbone.data.errors import MissingInput, existing
from backbone.models.weights import CheckpointError

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_SIZE = 150
EMBEDDING_DIM = 128
PACKAGE_HINT = "pip install face-recognition-models"

# ---------------------------------------------------------------- the network as dlib declares it


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the dlib network: ``kind`` is dlib's layer (``con``, ``affine``, ``relu``, ``max_pool``,
    ``avg_pool``, ``add_prev``, ``fc``, ``tag``, ``skip``); ``shape`` its fixed sizes: con ``(filters, nr, nc,
    stride, padding)``, pools ``(nr, nc, stride, padding)`` (0x0: the whole input), fc ``(outputs,)``, tag,
    skip and add_prev ``(tag id,)``."""

    kind: str
    shape: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.kind == "con":
            n, nr, nc, stride, pad = self.shape
            return f"con {n} {nr}x{nc} /{stride} pad {pad}"
        if self.kind in ("max_pool", "avg_pool"):
            nr, nc, stride, pad = self.shape
            return f"{self.kind} " + ("everything" if nr == 0 else f"{nr}x{nc} /{stride} pad {pad}")
        return f"{self.kind} {' '.join(map(str, self.shape))}".strip()

    @property
    def structural(self) -> bool:
        """A tag or skip layer: it writes only a version, no details."""
        return self.kind in ("tag", "skip")


def _con(filters: int, size: int, stride: int) -> LayerSpec:
    return LayerSpec("con", (filters, size, size, stride, size // 2 if stride == 1 else 0))


def _block(filters: int, stride: int) -> list[LayerSpec]:
    """``BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,...>>>>>``, top down."""
    return [LayerSpec("affine"), _con(filters, 3, 1), LayerSpec("relu"), LayerSpec("affine"), _con(filters, 3, stride)]


def _ares(filters: int) -> list[LayerSpec]:
    """``relu<add_prev1<block<N,affine,1,tag1<...>>>>``, top down."""
    return [LayerSpec("relu"), LayerSpec("add_prev", (1,)), *_block(filters, 1), LayerSpec("tag", (1,))]


def _ares_down(filters: int) -> list[LayerSpec]:
    """``relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<...>>>>>>>``, top down."""
    shortcut = [LayerSpec("avg_pool", (2, 2, 2, 0)), LayerSpec("skip", (1,)), LayerSpec("tag", (2,))]
    return [LayerSpec("relu"), LayerSpec("add_prev", (2,)), *shortcut, *_block(filters, 2), LayerSpec("tag", (1,))]


# (filters, downsampling) of the residual blocks in forward order: alevel4 up to alevel0
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2
BLOCKS += [(256, True)] + [(256, False)] * 2 + [(256, True)]


def network_layers() -> list[LayerSpec]:
    """dlib's ``anet_type`` below its loss layer, top down (the fc layer first, the first con last)."""
    blocks = [_ares_down(n) if down else _ares(n) for n, down in reversed(BLOCKS)]
    stem = [LayerSpec("max_pool", (3, 3, 2, 0)), LayerSpec("relu"), LayerSpec("affine"), _con(32, 7, 2)]
    return [LayerSpec("fc", (EMBEDDING_DIM,)), LayerSpec("avg_pool", (0, 0, 1, 0)), *sum(blocks, []), *stem]


# ---------------------------------------------------------------- reading dlib's serialisation


class _Stream:
    """A cursor over the bytes of a dlib file. Every read is bounds-checked: the end of the file is an error."""

    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.source = source
        self.pos = 0

    def refuse(self, expected: str, found: str, at: int | None = None) -> CheckpointError:
        at = self.pos if at is None else at
        return CheckpointError(
            f"{self.source} is not dlib's face recognition ResNet ({MODEL_FILE}): "
            f"at byte {at} expected {expected}, found {found}"
        )

    def take(self, count: int, what: str) -> memoryview:
        left = len(self.data) - self.pos
        if count > left:
            raise CheckpointError(
                f"{self.source} ends too early (truncated?): {what} at byte {self.pos} needs {count} bytes, "
                f"the file has {left} left of {len(self.data)}"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str, nbytes: int = 8, signed: bool = True) -> int:
        """dlib's ``pack_int``: a control byte (low 4 bits: size, 0x80: negative, 0x70: always 0), then the bytes."""
        start = self.pos
        control = self.take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or size > nbytes or (control & 0x80 and not signed):
            kind = f"{'an' if signed else 'a non-negative'} integer of at most {nbytes} bytes"
            raise self.refuse(f"{what} ({kind})", f"the control byte 0x{control:02x}", at=start)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def real(self, what: str) -> float:
        """dlib's ``float_details``: ``mantissa * 2**exponent``; exponents 32000-32002 mean inf, -inf and nan."""
        mantissa = self.integer(f"{what} (mantissa)", 8)
        exponent = self.integer(f"{what} (exponent)", 2)
        if exponent >= 32000:
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            return math.copysign(math.inf, mantissa)

    def string(self, what: str, limit: int = 100) -> str:
        """A name: its length, then its bytes (printable ASCII, at most ``limit`` of them)."""
        start = self.pos
        size = self.integer(f"the length of {what}", 8, signed=False)
        if size > limit:
            raise self.refuse(f"{what} (a string of at most {limit} bytes)", f"a length of {size}", at=start)
        text = bytes(self.take(size, what)).decode("latin-1")
        if not (text.isascii() and text.isprintable()):
            raise self.refuse(what, f"{size} bytes that are not a name: {text[:40]!r}", at=start)
        return text

    def flag(self, what: str) -> bool:
        start = self.pos
        byte = bytes(self.take(1, what))
        if byte not in (b"0", b"1"):
            raise self.refuse(f"{what} (a flag: '0' or '1')", repr(byte), at=start)
        return byte == b"1"

    def version(self, what: str, allowed: tuple[int, ...]) -> int:
        start = self.pos
        value = self.integer(f"the version of {what}", 4)
        if value not in allowed:
            raise self.refuse(f"the version of {what} ({' or '.join(map(str, allowed))})", str(value), at=start)
        return value

    def tensor(self, what: str) -> np.ndarray:
        """A ``resizable_tensor`` (version 2): ``n, k, nr, nc``, then that many little-endian float32."""
        self.version(f"the tensor {what}", (2,))
        start = self.pos
        shape = tuple(self.integer(f"a dimension of the tensor {what}", 8) for _ in range(4))
        if min(shape) < 0:
            raise self.refuse(f"the dimensions of the tensor {what}", f"{shape}", at=start)
        count = math.prod(shape)
        raw = self.take(4 * count, f"the {count} floats of the tensor {what} {shape}")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self, what: str) -> tuple[int, ...]:
        """An ``alias_tensor`` (a view into a layer's parameters): its version and ``n, k, nr, nc``."""
        self.version(f"the parameter view {what}", (1,))
        start = self.pos
        shape = tuple(self.integer(f"a dimension of {what}", 8) for _ in range(4))
        if min(shape) < 0:
            raise self.refuse(f"the dimensions of {what}", f"{shape}", at=start)
        return shape


@dataclass
class DlibLayer:
    """One layer as read from the file: its spec, dlib's name for it (tag and skip layers have none in the file:
    theirs is their kind) and its parameters (numpy, float32)."""

    spec: LayerSpec
    name: str
    params: dict[str, np.ndarray]

    def __str__(self) -> str:
        sizes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.params.items())
        return f"{self.name:<10} {self.spec}" + (f"  [{sizes}]" if sizes else "")


@dataclass
class DlibResNetFile:
    """What :func:`read_dlib_resnet` reads: the input means, the loss layer's settings and the layers top down
    (including the tag and skip layers, which have no parameters)."""

    source: str
    mean_rgb: tuple[float, float, float]
    loss: dict[str, float]
    layers: list[DlibLayer]

    def of_kind(self, kind: str) -> list[DlibLayer]:
        """The layers of one kind in forward order (bottom up)."""
        return [layer for layer in reversed(self.layers) if layer.spec.kind == kind]


def _split(s: _Stream, params: np.ndarray, views: list[tuple[str, tuple[int, ...]]], what: str) -> dict:
    """Cut a layer's flat parameter tensor into its views (dlib's ``alias_tensor``s, laid end to end)."""
    flat, out, offset = params.reshape(-1), {}, 0
    needed = sum(math.prod(shape) for _, shape in views)
    if needed != flat.size:
        raise s.refuse(f"{what} parameters of {needed} values ({views})", f"{flat.size} values")
    for name, shape in views:
        size = math.prod(shape)
        out[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return out


def _read_con(s: _Stream, name: str) -> tuple[tuple[int, ...], dict]:
    params = s.tensor("con_ params")
    filters = s.integer("con_ num_filters")
    nr, nc = s.integer("con_ nr"), s.integer("con_ nc")
    stride_y, stride_x = s.integer("con_ stride_y", 4), s.integer("con_ stride_x", 4)
    pad_y, pad_x = s.integer("con_ padding_y", 4), s.integer("con_ padding_x", 4)
    weight, bias = s.alias("con_ filters"), s.alias("con_ biases")
    for what in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        s.real(f"con_ {what}_multiplier")
    use_bias = s.flag("con_ use_bias") if name == "con_5" else True
    if stride_y != stride_x or pad_y != pad_x:
        raise s.refuse(
            "a con_ with equal strides and paddings", f"strides {stride_y, stride_x}, paddings {pad_y, pad_x}"
        )
    views = [("weight", weight)] + ([("bias", (bias[1],))] if use_bias else [])
    return (filters, nr, nc, stride_y, pad_y), _split(s, params, views, "con_")


def _read_affine(s: _Stream, name: str) -> tuple[tuple[int, ...], dict]:
    params = s.tensor("affine_ params")
    gamma, beta = s.alias("affine_ gamma"), s.alias("affine_ beta")
    start, mode = s.pos, s.integer("affine_ mode", 4)
    if mode != 0:  # dlib's layer_mode: CONV_MODE = 0 (one gamma and beta a channel), FC_MODE = 1
        raise s.refuse("an affine_ layer in CONV_MODE (0)", f"mode {mode}", at=start)
    return (), _split(s, params, [("gamma", (gamma[1],)), ("beta", (beta[1],))], "affine_")


def _read_pool(s: _Stream, name: str) -> tuple[tuple[int, ...], dict]:
    nr, nc = s.integer(f"{name} nr"), s.integer(f"{name} nc")
    stride_y, stride_x = s.integer(f"{name} stride_y", 4), s.integer(f"{name} stride_x", 4)
    pad_y, pad_x = s.integer(f"{name} padding_y", 4), s.integer(f"{name} padding_x", 4)
    if (nr, stride_y, pad_y) != (nc, stride_x, pad_x):
        raise s.refuse(f"a square {name}", f"{nr}x{nc}, strides {stride_y, stride_x}, paddings {pad_y, pad_x}")
    return (nr, nc, stride_y, pad_y), {}


def _read_fc(s: _Stream, name: str) -> tuple[tuple[int, ...], dict]:
    outputs = s.integer("fc_ num_outputs", signed=False)
    inputs = s.integer("fc_ num_inputs", signed=False)
    params = s.tensor("fc_ params")
    weights, _ = s.alias("fc_ weights"), s.alias("fc_ biases")
    start, bias_mode = s.pos, s.integer("fc_ bias_mode", 4)
    if bias_mode != 1:  # FC_NO_BIAS
        raise s.refuse("an fc_no_bias layer (bias mode 1)", f"bias mode {bias_mode}", at=start)
    for what in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        s.real(f"fc_ {what}_multiplier")
    if weights[:2] != (inputs, outputs):
        raise s.refuse(f"fc_ weights of {inputs} x {outputs}", f"{weights}")
    return (outputs,), _split(s, params, [("weight", (inputs, outputs))], "fc_")


# dlib's name of each layer's details -> (kind, reader of the fields after the name)
_DETAILS = {
    "con_4": ("con", _read_con),
    "con_5": ("con", _read_con),
    "affine_": ("affine", _read_affine),
    "relu_": ("relu", lambda s, name: ((), {})),
    "add_prev_": ("add_prev", lambda s, name: ((), {})),
    "max_pool_2": ("max_pool", _read_pool),
    "avg_pool_2": ("avg_pool", _read_pool),
    "fc_2": ("fc", _read_fc),
}


def _read_loss(s: _Stream) -> dict[str, float]:
    s.version("the loss layer (add_loss_layer)", (1,))
    start = s.pos
    name = s.string("the name of the loss layer")
    if name != "loss_metric_2":
        raise s.refuse("the loss layer loss_metric_2", f"{name!r}", at=start)
    return {"margin": s.real("loss_metric_ margin"), "distance_threshold": s.real("loss_metric_ dist_thresh")}


def _read_input(s: _Stream) -> tuple[float, float, float]:
    start = s.pos
    name = s.string("the name of the input layer")
    if name != "input_rgb_image_sized":
        raise s.refuse("the input layer input_rgb_image_sized", f"{name!r}", at=start)
    mean = tuple(float(np.float32(s.real(f"input avg_{c}"))) for c in ("red", "green", "blue"))
    start = s.pos
    size = (s.integer("input nr", signed=False), s.integer("input nc", signed=False))
    if size != (INPUT_SIZE, INPUT_SIZE):
        raise s.refuse(f"an input of {INPUT_SIZE}x{INPUT_SIZE}", f"{size[0]}x{size[1]}", at=start)
    return mean  # type: ignore[return-value]


def _read_details(s: _Stream, spec: LayerSpec, version: int, on_input: bool) -> DlibLayer:
    """One ``add_layer``'s details, flags and cached tensors, checked against ``spec``."""
    start = s.pos
    name = s.string(f"the name of the layer {spec}")
    kind, reader = _DETAILS.get(name, (None, None))
    if reader is None or kind != spec.kind:
        raise s.refuse(f"the layer {spec}", f"a layer named {name!r}", at=start)
    shape, params = reader(s, name)
    if kind in ("con", "fc", "max_pool", "avg_pool") and shape != spec.shape:
        raise s.refuse(f"the layer {spec}", f"{LayerSpec(kind, shape)}", at=start)
    for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        s.flag(f"add_layer {flag}")
    for cached in ("x_grad", "cached_output") + (("grad_final",) if on_input else ("params_grad",) * (version >= 2)):
        s.tensor(cached)
    if on_input and version >= 3:
        s.integer("add_layer sample_expansion_factor", 4, signed=False)
    return DlibLayer(spec, name, params)


def parse_dlib_resnet(data: bytes, source: str = "<bytes>") -> DlibResNetFile:
    """The content of a ``dlib_face_recognition_resnet_model_v1.dat`` (its bytes; ``source`` names it in errors)."""
    s = _Stream(data, source)
    loss = _read_loss(s)
    specs = network_layers()
    versions = []
    for i, spec in enumerate(specs):
        on_input = i == len(specs) - 1
        allowed = (1,) if spec.structural else (2, 3) if on_input else (1, 2)
        versions.append(s.version(f"layer {i} ({spec})", allowed))
    mean = _read_input(s)
    layers = [DlibLayer(spec, spec.kind, {}) for spec in specs]
    for i in reversed(range(len(specs))):
        if not specs[i].structural:
            layers[i] = _read_details(s, specs[i], versions[i], on_input=i == len(specs) - 1)
    if s.pos != len(data):
        raise s.refuse("the end of the file", f"{len(data) - s.pos} more bytes")
    return DlibResNetFile(source, mean, loss, layers)


def read_dlib_resnet(path: str | Path) -> DlibResNetFile:
    """Read dlib's face recognition ResNet file; a :class:`CheckpointError` (naming the file, the byte, what was
    expected and what was found) for anything else: another dlib model, a truncated copy, other bytes."""
    hint = f"`{PACKAGE_HINT}` installs {MODEL_FILE} (load_dlib_resnet() without a path finds it)"
    path = existing(path, "dlib model file", hint=hint)
    return parse_dlib_resnet(path.read_bytes(), str(path))


def default_model_path() -> Path:
    """The installed ``face-recognition-models`` package's copy of the model (not imported: its ``__init__``
    needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(f"dlib's face recognition ResNet ({MODEL_FILE}) is not installed: {PACKAGE_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE


# ---------------------------------------------------------------- the PyTorch module


_TORCH_NAMES = {"gamma": "weight", "beta": "bias"}  # dlib's names of the affine_ parameters -> ours


class Affine(nn.Module):
    """dlib's ``affine_`` in CONV_MODE: ``gamma[c] * x + beta[c]`` (batch norm folded for inference)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def dlib_conv(in_channels: int, out_channels: int, size: int, stride: int) -> nn.Conv2d:
    """dlib's ``con_<out,size,size,stride,stride>``: padding ``size // 2`` at stride 1, none when strided."""
    return nn.Conv2d(in_channels, out_channels, size, stride, padding=size // 2 if stride == 1 else 0)


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev_`` (``tt::add``): the sum over the larger of each dimension, each tensor zero-padded at
    the end (more channels, bottom rows, right columns) where the other is larger."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (n - m for n, m in zip(shape, t.shape[1:]))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a) + pad(b)


class Residual(nn.Module):
    """dlib's ``ares`` (``relu(x + block(x))``) or, with ``down``, ``ares_down`` (``relu(add_prev(avg_pool 2x2 /2
    (x), block(x)))`` with a strided first convolution)."""

    def __init__(self, in_channels: int, channels: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = dlib_conv(in_channels, channels, 3, 2 if down else 1)
        self.affine1 = Affine(channels)
        self.conv2 = dlib_conv(channels, channels, 3, 1)
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_zero_padded(shortcut, y))


class DlibResNet(nn.Module):
    """dlib's face recognition ResNet (``anet_type`` of ``dnn_face_recognition_ex.cpp``); see the module docstring.
    Random weights until :meth:`load_dlib` (or use :func:`load_dlib_resnet`)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1))
        self.conv = dlib_conv(3, 32, 7, 2)
        self.affine = Affine(32)
        blocks, channels = [], 32
        for width, down in BLOCKS:
            blocks.append(Residual(channels, width, down))
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(channels, EMBEDDING_DIM, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Descriptors of face chips: ``x`` (N, 3, 150, 150), RGB in 0..255 (any float dtype; integers are
        converted) -> (N, 128), the same numbers as dlib's ``compute_face_descriptor`` (not normalised)."""
        return self.embed(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last residual block's feature map: ``x`` (N, 3, 150, 150) RGB in 0..255 -> (N, 256, 2, 2)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"DlibResNet takes (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) RGB chips, got {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.to(self.mean.dtype)
        x = (x - self.mean) / 256.0  # (N, 3, 150, 150)
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)  # (N, 32, 35, 35)
        for block in self.blocks:
            x = block(x)  # ... (N, 256, 2, 2)
        return x

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        """dlib's ``avg_pool_everything`` and ``fc_no_bias<128>``: (N, 256, H, W) -> (N, 128)."""
        return self.fc(fmap.mean(dim=(2, 3)))

    def convs(self) -> list[nn.Conv2d]:
        """The 29 convolutions in forward order (dlib's file order, bottom up)."""
        return [self.conv] + [c for b in self.blocks for c in (b.conv1, b.conv2)]

    def affines(self) -> list[Affine]:
        """The 29 affine layers in forward order."""
        return [self.affine] + [a for b in self.blocks for a in (b.affine1, b.affine2)]

    def _targets(self, weights: DlibResNetFile) -> list[tuple[torch.Tensor, np.ndarray, DlibLayer]]:
        """``(our parameter, dlib's value, its layer)`` for every weight of a read file."""
        pairs = [*zip(self.convs(), weights.of_kind("con")), *zip(self.affines(), weights.of_kind("affine"))]
        targets = [(getattr(module, _TORCH_NAMES.get(name, name)), value, layer)
                   for module, layer in pairs for name, value in layer.params.items()]  # fmt: skip
        return targets + [(self.fc.weight, fc.params["weight"].T, fc) for fc in weights.of_kind("fc")]

    @torch.no_grad()
    def load_dlib(self, weights: DlibResNetFile) -> DlibResNet:
        """Copy the weights of a read dlib file into this module (in place); returns the module. Weights that do
        not fit this network are a :class:`CheckpointError`."""
        targets = self._targets(weights)
        wrong = [f"{layer.spec}: {v.shape} where {tuple(p.shape)}" for p, v, layer in targets if p.shape != v.shape]
        if len(targets) != len(list(self.parameters())):
            wrong.append(f"{len(targets)} weight tensors where {len(list(self.parameters()))}")
        if wrong:
            raise CheckpointError(f"{weights.source} does not fit DlibResNet: {'; '.join(wrong[:3])}")
        for target, value, _ in targets:
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        self.mean.copy_(torch.tensor(weights.mean_rgb).view(1, 3, 1, 1))
        return self


def load_dlib_resnet(path: str | Path | None = None) -> DlibResNet:
    """dlib's face recognition ResNet with the weights of ``path`` (default: the copy of the installed
    ``face-recognition-models`` package), in eval mode on the CPU, float32."""
    weights = read_dlib_resnet(default_model_path() if path is None else path)
    return DlibResNet().load_dlib(weights).eval()
