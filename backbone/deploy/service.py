"""The verification service: a FastAPI app around one :class:`~backbone.deploy.runtime.FaceModel`.

Endpoints (OpenAPI docs at ``/docs``):

- ``POST /verify``: two images (multipart fields ``image_a``, ``image_b``) -> similarity,
  threshold, verdict (``same`` = 1 for the same person) and the faces found.
- ``POST /embed``: one image (field ``image``) -> its embedding and face.
- ``GET /health``: the service is up (never needs the API key: for probes), its memory budget
  for images and how much of it is in use.
- ``GET /version``: the model, its threshold and where it came from, the code's commit.

The model loads once. Each image is decoded (bounded: ``backbone.data.images``) at most
``max_side`` pixels long and aligned as in training in a worker thread, once its share of the
memory budget is free (:class:`MemoryBudget`: many large images at once wait, rather than exhaust
the machine); the embeddings of requests that arrive together are computed in one forward pass
(:class:`~backbone.deploy.batching.MicroBatcher`). A body that has not arrived in full within
``body_timeout`` seconds is answered 408.

Every error is a JSON ``{"error": code, "message": ..., "field": ...}`` with a 4xx status, and the
service goes on serving: 400 an image that does not decode (not an image, truncated, empty),
401 a missing or wrong API key, 408 a body too slow to arrive, 413 an upload over the size limit or
an image over the pixel limit or alone over the memory budget, 415 a request that is not ``multipart/form-data`` or a part that is not an image type,
422 a missing field or an image without a face. Requests carry image bytes only: the service
reads no path a request names.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from backbone import __version__
from backbone.data.errors import DataError, ImageReadError, ImageTooLarge, NoFaceError
from backbone.data.images import decode_rgb, decoded_size, image_header
from backbone.deploy.batching import MicroBatcher
from backbone.deploy.runtime import Face, FaceModel, as_batch
from backbone.deploy.settings import API_KEY_ENV, API_KEY_HEADER, MB, ServiceSettings, image_cost
from backbone.labels import DIFFERENT, SAME

__all__ = ["API_KEY_ENV", "API_KEY_HEADER", "ServiceSettings", "create_app"]  # the settings live in .settings

log = logging.getLogger("backbone.serve")

IMAGE_TYPES = ("image/", "application/octet-stream")  # what an image part may be declared as (curl -F: by extension)
Image = Annotated[UploadFile, File(description="an image file (JPEG, PNG, ...) holding a face")]


class ServiceError(HTTPException):
    """A request the service refuses: its status, a short code and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(status, message)
        self.code, self.message, self.field = code, message, field


class ErrorBody(BaseModel):
    error: str = Field(description="a short code: unreadable-image, no-face, upload-too-large, ...")
    message: str = Field(description="what is wrong, naming the field and the limit")
    field: str | None = Field(None, description="the request field at fault, if one is")


class FaceInfo(BaseModel):
    box: list[float] = Field(description="left, top, right, bottom in the image's pixels")
    detector: str = Field(description="mtcnn; none (centre crop of a pre-aligned image); fallback (no face found)")
    prob: float | None = Field(None, description="the detector's confidence")


class VerifyResult(BaseModel):
    similarity: float = Field(description="the model's score, higher = more alike")
    threshold: float = Field(description="SAME when similarity >= threshold")
    same: int = Field(description=f"{SAME}: the same person, {DIFFERENT}: different people")
    verdict: str = Field(description="'same' or 'different'")
    faces: list[FaceInfo]


class EmbedResult(BaseModel):
    embedding: list[float] = Field(description="L2-normalised")
    dim: int
    face: FaceInfo


ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 408, 413, 415, 422)}


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=code, message=message, field=field).model_dump(), status_code=status)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class MemoryBudget:
    """The bytes that images being decoded and aligned may take at once (``ServiceSettings.
    memory_budget_bytes``): a request holds its images' estimated share (``image_cost``) while it
    decodes and aligns them, and waits while the budget is spent. One image over the whole budget
    is refused (413): it could never run."""

    def __init__(self, total: int):
        self.total, self.used, self.waiting = total, 0, 0
        self._free = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, cost: int, field: str):
        if cost > self.total:
            raise ServiceError(413, "image-too-large", f"{field}: decoding and aligning it takes about "
                               f"{cost / MB:.0f} MB, over the service's memory budget of {self.total / MB:g} MB", field)  # fmt: skip
        async with self._free:
            self.waiting += 1
            try:
                await self._free.wait_for(lambda: self.used + cost <= self.total)
            finally:
                self.waiting -= 1
            self.used += cost
        try:
            yield
        finally:
            async with self._free:
                self.used -= cost
                self._free.notify_all()


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused, by its Content-Length
    before a byte is read, or while it streams in; one that has not arrived in full ``timeout``
    seconds after its first read is refused too (a ServiceError, which the app's handler turns
    into the JSON 413 or 408: FastAPI re-raises HTTP errors met while parsing a form)."""

    def __init__(self, app, limit: int, max_upload_bytes: int, timeout: float = 30.0):
        self.app, self.limit, self.timeout = app, limit, timeout
        self.message = (f"the request body is over the limit of {limit / MB:g} MB "
                        f"(two images of at most {max_upload_bytes / MB:g} MB each)")  # fmt: skip

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _error(413, "upload-too-large", self.message)(scope, receive, send)
        seen = 0
        deadline = None

        async def counted():
            nonlocal seen, deadline
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self.timeout
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise ServiceError(408, "request-timeout", f"the request body did not arrive in full within "
                                   f"{self.timeout:g} s") from None  # fmt: skip
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ServiceError(413, "upload-too-large", self.message)
            return message

        await self.app(scope, counted, send)


def create_app(model: FaceModel, settings: ServiceSettings | None = None) -> FastAPI:
    """The service's app for ``model`` (run it with uvicorn; ``backbone serve`` does)."""
    settings = settings or ServiceSettings()
    batcher = MicroBatcher(model.engine.embed, settings.max_batch, settings.batch_window)
    key = _digest(settings.api_key) if settings.api_key else None
    body_limit = 2 * settings.max_upload_bytes + 64 * 1024
    budget = MemoryBudget(settings.memory_budget_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="backbone face verification", version=__version__, lifespan=lifespan,
                  description=(__doc__ or "").split("\n\n", 2)[1])  # fmt: skip
    app.state.model, app.state.batcher, app.state.settings = model, batcher, settings
    app.add_middleware(BodyLimit, limit=body_limit, max_upload_bytes=settings.max_upload_bytes,
                       timeout=settings.body_timeout)  # fmt: skip

    async def authorised(supplied: str | None = Depends(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))) -> None:
        if key is not None and not (supplied and hmac.compare_digest(_digest(supplied), key)):
            raise ServiceError(401, "unauthorized", f"missing or wrong API key (header {API_KEY_HEADER})")

    async def face_of(upload: UploadFile, field: str) -> Face:
        """Read, decode and align one uploaded image; every failure a ServiceError naming ``field``."""
        kind = (upload.content_type or "").lower()
        if not kind.startswith(IMAGE_TYPES):
            raise ServiceError(415, "unsupported-media-type", f"{field}: content type {kind or 'none'!r} is not an image type (image/*)", field)  # fmt: skip
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ServiceError(413, "upload-too-large", f"{field}: the upload is over the limit of {settings.max_upload_bytes / MB:g} MB", field)  # fmt: skip
        name = f"{field} ({upload.filename[:100]})" if upload.filename else field
        try:
            size, fmt = image_header(data, name)
            cost = image_cost(size, decoded_size(size, fmt, name, settings.max_side), settings.max_side)
            async with budget.hold(cost, field):
                return await run_in_threadpool(lambda: aligned(data, name, size))
        except ImageTooLarge as exc:
            raise ServiceError(413, "image-too-large", str(exc), field) from None
        except ImageReadError as exc:
            raise ServiceError(400, "unreadable-image", str(exc), field) from None
        except NoFaceError as exc:
            raise ServiceError(422, "no-face", str(exc), field) from None
        except DataError as exc:  # detection itself failed on this image
            raise ServiceError(422, "alignment-failed", str(exc), field) from None

    def aligned(data: bytes, name: str, size: tuple[int, int]) -> Face:
        """The face of image bytes decoded at most ``max_side`` long; its box in the full image's pixels."""
        img = decode_rgb(data, name, settings.max_side)
        face = model.face(img, name)
        if img.size != size:
            scale = size[0] / img.size[0], size[1] / img.size[1]
            face.box = [v * scale[i % 2] for i, v in enumerate(face.box)]
        return face

    @app.post("/verify", response_model=VerifyResult, responses=ERRORS, dependencies=[Depends(authorised)])
    async def verify(image_a: Image, image_b: Image) -> VerifyResult:
        """Are the faces in two images the same person?"""
        async with batcher.reserve(2) as submit:
            faces = await asyncio.gather(face_of(image_a, "image_a"), face_of(image_b, "image_b"))
            emb = await submit(as_batch([f.crop for f in faces]))
        score = float(model.score(emb[:1], emb[1:])[0])
        same = SAME if score >= model.threshold else DIFFERENT
        return VerifyResult(similarity=score, threshold=model.threshold, same=same,
                            verdict="same" if same == SAME else "different", faces=[FaceInfo(**f.info()) for f in faces])  # fmt: skip

    @app.post("/embed", response_model=EmbedResult, responses=ERRORS, dependencies=[Depends(authorised)])
    async def embed_one(image: Image) -> EmbedResult:
        """The embedding of the face in one image."""
        async with batcher.reserve(1) as submit:
            face = await face_of(image, "image")
            emb = (await submit(as_batch([face.crop])))[0]
        return EmbedResult(embedding=emb.tolist(), dim=len(emb), face=FaceInfo(**face.info()))

    @app.get("/health")
    async def health() -> dict:
        """The service is up and its model loaded (no API key needed), what runs it where, and its
        memory budget for images (in MB: all of it, in use now, requests waiting for it)."""
        return {"status": "ok", "backend": model.engine.backend, "device": model.engine.device,
                "memory_budget_mb": budget.total / MB, "memory_in_use_mb": round(budget.used / MB, 1),
                "waiting_for_memory": budget.waiting, "max_side": settings.max_side}  # fmt: skip

    @app.get("/version", responses={401: {"model": ErrorBody}}, dependencies=[Depends(authorised)])
    async def version() -> dict:
        """The model served, its threshold and where both came from."""
        return {**model.version(), "batches": batcher.batches, "embedded": batcher.rows}

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc, ServiceError):
            log.info("%s %s: %d %s", request.method, request.url.path, exc.status_code, exc.message)
            return _error(exc.status_code, exc.code, exc.message, exc.field)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        kind = request.headers.get("content-type", "")
        if request.method == "POST" and not kind.lower().startswith("multipart/form-data"):
            return _error(415, "unsupported-media-type",
                          f"the request is {kind or 'without a content type'}: send the images as multipart/form-data")  # fmt: skip
        problems = [(str(e["loc"][-1]), e["type"], e["msg"]) for e in exc.errors()]
        field = problems[0][0] if problems else None
        words = "; ".join(f"missing field {f!r}" if t == "missing" else f"{f}: {m}" for f, t, m in problems)
        return _error(
            422, "missing-field" if all(t == "missing" for _, t, _ in problems) else "invalid-field", words, field
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(
            500, "internal-error", f"the server failed on this request ({type(exc).__name__}); it goes on serving"
        )

    return app
