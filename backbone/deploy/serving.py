"""``backbone serve`` (and ``python -m backbone.deploy serve``): the verification service on a
model file or a checkpoint, until interrupted; and :class:`ServiceProcess`, the service in a
subprocess on a free port of 127.0.0.1 (the real-server test and the load test start it so).

Nothing here imports PyTorch: an ONNX model is served without it (the container does).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from backbone.arguments import finite, within
from backbone.data.errors import DataError
from backbone.deploy.settings import API_KEY_ENV, API_KEY_HEADER, ServiceSettings
from backbone.paths import cli_path

# Every setting of the service by an environment variable as well (containers): the command line
# wins over the variable, the variable over the default. BACKBONE_API_KEY is read at start (no flag shows it).
ENVIRONMENT = {
    "model": "BACKBONE_MODEL", "gallery": "BACKBONE_GALLERY", "gallery_cache": "BACKBONE_GALLERY_CACHE",
    "host": "BACKBONE_HOST", "port": "BACKBONE_PORT", "threshold": "BACKBONE_THRESHOLD",
    "no_face": "BACKBONE_NO_FACE", "max_upload_mb": "BACKBONE_MAX_UPLOAD_MB", "memory_mb": "BACKBONE_MEMORY_MB",
    "max_side": "BACKBONE_MAX_SIDE", "body_timeout": "BACKBONE_BODY_TIMEOUT", "max_batch": "BACKBONE_MAX_BATCH",
    "max_batch_pairs": "BACKBONE_MAX_BATCH_PAIRS", "device": "BACKBONE_DEVICE", "log_level": "BACKBONE_LOG_LEVEL",
}  # fmt: skip


def _from_environment(parser: argparse.ArgumentParser) -> None:
    """Defaults from ``ENVIRONMENT``'s variables, given as text: argparse reads them with each option's
    own type and choices, so a bad value is refused as a bad option would be."""
    for action in parser._actions:
        variable = ENVIRONMENT.get(action.dest)
        if variable is None:
            continue
        action.help = f"{action.help} [${variable}]" if action.help else f"[${variable}]"
        if os.environ.get(variable):
            action.default = os.environ[variable]
            action.required = False


def register_serve(commands: argparse._SubParsersAction) -> None:
    defaults = ServiceSettings()
    p = commands.add_parser("serve", help="a verification service (FastAPI) for an exported model or a checkpoint",
                            description=cmd_serve.__doc__)  # fmt: skip
    p.add_argument("--model", type=cli_path, metavar="FILE_OR_CHECKPOINT",
                   help="an exported .onnx or TorchScript file (its sidecar beside it), or a checkpoint (.ckpt) "
                   "(default: the pretrained model, dlib's ResNet as it is, flip- and zoom-averaged; needs PyTorch)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--threshold", type=finite, help="SAME at or above it (default: the model's validation-chosen one)")
    p.add_argument("--no-face", choices=("report", "fallback"), default="report",
                   help="an image without a face: refuse it with 422 (report), or use its centre crop (fallback)")  # fmt: skip
    p.add_argument("--api-key", help=f"require this key in the {API_KEY_HEADER} header (better: set ${API_KEY_ENV}, "
                   "which no process listing shows)")  # fmt: skip
    p.add_argument(
        "--max-upload-mb", type=float, default=defaults.max_upload_bytes / (1 << 20), help="largest image upload"
    )
    p.add_argument("--max-batch", type=int, default=defaults.max_batch, help="most images in one forward pass")
    p.add_argument("--batch-window-ms", type=float, default=defaults.batch_window * 1000,
                   help="how long a forward pass waits for requests still decoding their images")  # fmt: skip
    p.add_argument("--memory-mb", type=within(1, 1 << 20), default=defaults.memory_budget_bytes / (1 << 20),
                   help="memory the images being decoded and aligned may take at once; more waits (default %(default)s)")  # fmt: skip
    p.add_argument("--max-side", type=int, default=defaults.max_side,
                   help="images are decoded and aligned at most this many pixels long (default %(default)s)")  # fmt: skip
    p.add_argument("--body-timeout", type=within(0, 3600, low_open=True), default=defaults.body_timeout,
                   help="seconds a request's body may take to arrive in full, else 408 (default %(default)s)")  # fmt: skip
    p.add_argument("--gallery", type=cli_path, metavar="FOLDER",
                   help="people for POST /identify: one sub-folder of photos per person, embedded at start")  # fmt: skip
    p.add_argument("--gallery-cache", type=cli_path, metavar="FOLDER",
                   help="where the gallery's embeddings are kept between starts (default: in memory only)")  # fmt: skip
    p.add_argument("--max-batch-pairs", type=int, default=defaults.max_batch_pairs,
                   help="most pairs in one POST /verify/batch (default %(default)s)")  # fmt: skip
    p.add_argument("--device", default="auto", help='where the model runs: "auto" (a GPU when the backend has one: '
                   'ONNX Runtime\'s CUDA provider, PyTorch\'s CUDA), "cpu", "cuda" or "cuda:N"; /health says which')  # fmt: skip
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="the service's log (debug: every request)")  # fmt: skip
    p.set_defaults(func=cmd_serve)
    _from_environment(p)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve POST /verify, /verify/batch, /embed and /identify, GET /health, /model and /version
    (OpenAPI docs at /docs) until interrupted; every option can come from its environment variable
    (shown in brackets). The model loads once (without --model: the pretrained model, dlib's ResNet as it
    is, at the threshold chosen on LFW's validation pairs); images are aligned as in training;
    requests that arrive together share a forward pass."""
    import uvicorn

    from backbone.deploy.runtime import FaceModel, load_engine
    from backbone.deploy.service import create_app

    settings = ServiceSettings(
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_batch=args.max_batch,
        batch_window=args.batch_window_ms / 1000,
        memory_budget_bytes=int(args.memory_mb * (1 << 20)),
        max_side=args.max_side,
        body_timeout=args.body_timeout,
        max_batch_pairs=args.max_batch_pairs,
        gallery=str(args.gallery) if args.gallery else None,
        gallery_cache=str(args.gallery_cache) if args.gallery_cache else None,
    )
    source = args.model
    if source is None:  # the default pretrained model, as `backbone verify` uses it
        from backbone.evaluation.pretrained import pretrained_checkpoint

        source = pretrained_checkpoint()
    model = FaceModel(load_engine(source, args.device), args.threshold, args.no_face)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    print(f"serving {model.sidecar.file} ({model.engine.backend} on {model.engine.device}), threshold {model.threshold:.4f} "
          f"({model.threshold_source}), API key {'required' if settings.api_key else 'off'}, "
          f"on http://{args.host}:{args.port} (docs at /docs)", flush=True)  # fmt: skip
    uvicorn.run(create_app(model, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m backbone.deploy serve ...``: the service alone, without the workbook's other
    commands (which import PyTorch)."""
    parser = argparse.ArgumentParser(prog="python -m backbone.deploy", description="The verification service.")
    register_serve(parser.add_subparsers(dest="group", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError) as exc:
        print(f"backbone: error: {exc}", file=sys.stderr)
        return 1


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never through a proxy


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1) as response:
            return response.status == 200
    except OSError:  # refused while starting, or a timeout
        return False


class ServiceProcess:
    """``python -m backbone.deploy serve [--model MODEL] *options`` on a free port of 127.0.0.1, as a
    context manager: answering ``/health`` on enter (else a RuntimeError with its output), stopped
    on exit. ``env`` adds to the environment; ``output`` holds what it printed, once it stopped."""

    def __init__(
        self, model: str | Path | None, *options: str, env: dict[str, str] | None = None, timeout: float = 120
    ):  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = ""
        self._log = tempfile.TemporaryFile()
        chosen = ["--model", str(model)] if model is not None else []  # None: the default pretrained model
        argv = [sys.executable, "-m", "backbone.deploy", "serve", *chosen,
                "--host", "127.0.0.1", "--port", str(self.port), *options]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.timeout = timeout

    def __enter__(self) -> ServiceProcess:
        deadline = time.monotonic() + self.timeout
        while not _answers(self.url + "/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(
                    f"the service did not answer /health (exit code {self.process.returncode}):\n{self.output}"
                )
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.seek(0)
        self.output = self._log.read().decode(errors="replace")
        self._log.close()
