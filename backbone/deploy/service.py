"""The verification service: a FastAPI app around one :class:`~backbone.deploy.runtime.FaceModel`.

Endpoints (OpenAPI docs at ``/docs``); images come as multipart files or as base64 in a JSON
body, under the same field names (``backbone.deploy.bodies``):

- ``POST /verify``: two images (``image_a``, ``image_b``) -> similarity, threshold, verdict
  (``same`` = 1 for the same person) and the faces found.
- ``POST /verify/batch``: many pairs in one JSON body (``{"pairs": [{"image_a": ..., "image_b":
  ...}, ...]}``) -> one result per pair, in order; a pair that fails gets its error in its place.
- ``POST /embed``: one image (``image``) -> its embedding and face.
- ``POST /identify``: one image (``image``) -> the people of the service's gallery most like it,
  best first (``--gallery``; the search of ``backbone identify``).
- ``GET /model``: the model served: name, embedding size, distance, threshold and how it was
  chosen, alignment, versions (no paths).
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

from fastapi import Depends, FastAPI, Query, Request
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
from backbone.deploy.bodies import ServiceError, Upload, body_kind, images_of, read_images, read_json
from backbone.deploy.runtime import Face, FaceModel, as_batch
from backbone.deploy.settings import API_KEY_ENV, API_KEY_HEADER, MB, ServiceSettings, image_cost
from backbone.labels import DIFFERENT, SAME

__all__ = ["API_KEY_ENV", "API_KEY_HEADER", "ServiceSettings", "create_app"]  # the settings live in .settings

log = logging.getLogger("backbone.serve")


def image_body(*fields: str) -> dict:
    """The OpenAPI request body of an endpoint taking images ``fields``: multipart files, or base64 in JSON."""
    files = {f: {"type": "string", "format": "binary", "description": "an image file holding a face"} for f in fields}
    text = {
        f: {"type": "string", "format": "byte", "description": "the image as base64, or a data URL"} for f in fields
    }
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": list(fields), "properties": files}},
        "application/json": {"schema": {"type": "object", "required": list(fields), "properties": text}}}}}  # fmt: skip


BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["pairs"], "properties": {"pairs": {"type": "array", "items": image_body(
        "image_a", "image_b")["requestBody"]["content"]["application/json"]["schema"]}}}}}}}  # fmt: skip


class ErrorBody(BaseModel):
    error: str = Field(description="a short code: unreadable-image, no-face, upload-too-large, ...")
    message: str = Field(description="what is wrong, naming the field and the limit")
    field: str | None = Field(None, description="the request field at fault, if one is")


class QualityInfo(BaseModel):
    face_px: float | None = Field(description="the face's width in the image's pixels (null: no detector box)")
    brightness: float = Field(description="the aligned face's mean luminance, 0..255")
    sharpness: float = Field(
        description="the variance of the Laplacian of the face at 128 px over its luminance variance"
    )
    ok: bool = Field(description="large, bright and sharp enough to trust a verdict on (backbone.data.faces.quality)")
    problems: list[str] = Field(description="what falls short, one sentence each with its threshold")


class FaceInfo(BaseModel):
    box: list[float] = Field(description="left, top, right, bottom in the image's pixels")
    detector: str = Field(description="mtcnn; none (centre crop of a pre-aligned image); fallback (no face found)")
    prob: float | None = Field(None, description="the detector's confidence")
    quality: QualityInfo


class VerifyResult(BaseModel):
    similarity: float = Field(description="the model's score, higher = more alike")
    threshold: float = Field(description="SAME when similarity >= threshold")
    same: int = Field(description=f"{SAME}: the same person, {DIFFERENT}: different people")
    verdict: str = Field(description="'same' or 'different'")
    trusted: bool = Field(description="both faces passed the quality check; if not, see faces[].quality.problems")
    faces: list[FaceInfo]


class EmbedResult(BaseModel):
    embedding: list[float] = Field(description="L2-normalised")
    dim: int
    face: FaceInfo


class PairError(ErrorBody):
    index: int = Field(description="the pair's place in the request, from 0")


class BatchResult(BaseModel):
    results: list[VerifyResult | PairError] = Field(description="one per pair, in the request's order")
    failed: int = Field(description="how many pairs got an error in their place")


class MatchInfo(BaseModel):
    person: str
    score: float = Field(description="the person's best photo's similarity to the probe")
    image: str = Field(description="that photo, relative to the gallery folder")
    same: int = Field(description=f"{SAME}: at or above the threshold")


class IdentifyResult(BaseModel):
    matches: list[MatchInfo] = Field(description="the people most like the probe, best first")
    threshold: float
    face: FaceInfo
    gallery: dict = Field(description="people and photos searched, photos left out, photos embedded at start")


ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 404, 408, 413, 415, 422)}
THRESHOLD_CHOSEN = {
    "validation": "chosen on the training run's validation pairs",
    "fixed": "the distance's fixed threshold (the run chose none)",
    "given": "given when the service started (--threshold)",
}


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

    def __init__(self, app, limit: int, max_upload_bytes: int, timeout: float = 30.0, limits: dict | None = None):
        self.app, self.limit, self.timeout, self.limits = app, limit, timeout, limits or {}
        self.message = (f"the request body is over the limit of {limit / MB:g} MB "
                        f"(two images of at most {max_upload_bytes / MB:g} MB each)")  # fmt: skip

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope.get("path", ""), self.limit)
        message = self.message if limit == self.limit else f"the request body is over the limit of {limit / MB:g} MB"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _error(413, "upload-too-large", message)(scope, receive, send)
        seen, deadline, too_much = 0, None, message

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
            if seen > limit:
                raise ServiceError(413, "upload-too-large", too_much)
            return message

        await self.app(scope, counted, send)


def create_app(model: FaceModel, settings: ServiceSettings | None = None) -> FastAPI:
    """The service's app for ``model`` (run it with uvicorn; ``backbone serve`` does)."""
    settings = settings or ServiceSettings()
    batcher = MicroBatcher(model.engine.embed, settings.max_batch, settings.batch_window)
    key = _digest(settings.api_key) if settings.api_key else None
    body_limit = 2 * settings.max_upload_bytes * 4 // 3 + 64 * 1024  # two images, as files or as base64
    budget = MemoryBudget(settings.memory_budget_bytes)
    gallery = None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal gallery
        if settings.gallery:
            from backbone.deploy.gallery import Gallery

            gallery = await run_in_threadpool(lambda: Gallery(settings.gallery, model, settings.gallery_cache))
            log.info("gallery %s: %d people, %d photos (%d embedded now, %d left out)", gallery.root.name,
                     gallery.people, len(gallery.paths), gallery.embedded, len(gallery.skipped))  # fmt: skip
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="backbone face verification", version=__version__, lifespan=lifespan,
                  description=(__doc__ or "").split("\n\n", 2)[1])  # fmt: skip
    app.state.model, app.state.batcher, app.state.settings = model, batcher, settings
    app.add_middleware(BodyLimit, limit=body_limit, max_upload_bytes=settings.max_upload_bytes,
                       timeout=settings.body_timeout, limits={"/verify/batch": settings.max_batch_bytes})  # fmt: skip

    async def authorised(supplied: str | None = Depends(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))) -> None:
        if key is not None and not (supplied and hmac.compare_digest(_digest(supplied), key)):
            raise ServiceError(401, "unauthorized", f"missing or wrong API key (header {API_KEY_HEADER})")

    async def face_of(upload: Upload) -> Face:
        """Decode and align one uploaded image; every failure a ServiceError naming its field."""
        data, name, field = upload.data, upload.name, upload.field
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

    def verdict(faces: list[Face], emb) -> VerifyResult:
        score = float(model.score(emb[:1], emb[1:])[0])
        same = SAME if score >= model.threshold else DIFFERENT
        infos = [FaceInfo(**f.info()) for f in faces]
        return VerifyResult(similarity=score, threshold=model.threshold, same=same, trusted=all(i.quality.ok for i in infos),
                            verdict="same" if same == SAME else "different", faces=infos)  # fmt: skip

    @app.post("/verify", response_model=VerifyResult, responses=ERRORS, dependencies=[Depends(authorised)],
              openapi_extra=image_body("image_a", "image_b"))  # fmt: skip
    async def verify(request: Request) -> VerifyResult:
        """Are the faces in two images the same person?"""
        uploads = await read_images(request, ("image_a", "image_b"), settings.max_upload_bytes)
        async with batcher.reserve(2) as submit:  # announced once the body is in: only decoding comes before the pass
            faces = await asyncio.gather(*(face_of(u) for u in uploads))
            emb = await submit(as_batch([f.crop for f in faces]))
        return verdict(faces, emb)

    @app.post("/verify/batch", response_model=BatchResult, responses=ERRORS, dependencies=[Depends(authorised)],
              openapi_extra=BATCH_BODY)  # fmt: skip
    async def verify_batch(request: Request) -> BatchResult:
        """Many pairs in one JSON body: one result per pair, in order, a failed pair's error in its place."""
        if body_kind(request) != "json":
            raise ServiceError(415, "unsupported-media-type", "a batch is a JSON body: {\"pairs\": [{\"image_a\": "
                               "base64, \"image_b\": base64}, ...]}")  # fmt: skip
        doc = await read_json(request)
        pairs = doc.get("pairs") if isinstance(doc, dict) else None
        if not isinstance(pairs, list) or not pairs:
            raise ServiceError(422, "invalid-field", "pairs must be a list of {image_a, image_b} objects", "pairs")
        if len(pairs) > settings.max_batch_pairs:
            raise ServiceError(413, "too-many-pairs", f"{len(pairs)} pairs, over the limit of "
                               f"{settings.max_batch_pairs} a request", "pairs")  # fmt: skip

        async def one(i: int, pair) -> list[Face] | ServiceError:
            try:
                uploads = images_of(pair, ("image_a", "image_b"), settings.max_upload_bytes, f"pairs[{i}].")
                return list(await asyncio.gather(*(face_of(u) for u in uploads)))
            except ServiceError as exc:
                return exc

        async with batcher.reserve(2 * len(pairs)) as submit:
            found = await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
            good = [faces for faces in found if isinstance(faces, list)]
            emb = await submit(as_batch([f.crop for faces in good for f in faces])) if good else None
        results, k = [], 0
        for i, faces in enumerate(found):
            if isinstance(faces, ServiceError):
                results.append(PairError(index=i, error=faces.code, message=faces.message, field=faces.field))
            else:
                results.append(verdict(faces, emb[2 * k : 2 * k + 2]))
                k += 1
        return BatchResult(results=results, failed=len(found) - len(good))

    @app.post("/embed", response_model=EmbedResult, responses=ERRORS, dependencies=[Depends(authorised)],
              openapi_extra=image_body("image"))  # fmt: skip
    async def embed_one(request: Request) -> EmbedResult:
        """The embedding of the face in one image."""
        (upload,) = await read_images(request, ("image",), settings.max_upload_bytes)
        async with batcher.reserve(1) as submit:
            face = await face_of(upload)
            emb = (await submit(as_batch([face.crop])))[0]
        return EmbedResult(embedding=emb.tolist(), dim=len(emb), face=FaceInfo(**face.info()))

    @app.post("/identify", response_model=IdentifyResult, responses=ERRORS, dependencies=[Depends(authorised)],
              openapi_extra=image_body("image"))  # fmt: skip
    async def identify(
        request: Request, top: int = Query(5, ge=1, le=100, description="people to return")
    ) -> IdentifyResult:
        """The people of the service's gallery most like the face in one image, best first."""
        if gallery is None:
            raise ServiceError(404, "no-gallery", "this service has no gallery: start it with --gallery FOLDER "
                               "(one sub-folder of photos per person) or $BACKBONE_GALLERY")  # fmt: skip
        (upload,) = await read_images(request, ("image",), settings.max_upload_bytes)
        async with batcher.reserve(1) as submit:
            face = await face_of(upload)
            emb = (await submit(as_batch([face.crop])))[0]
        matches = gallery.search(emb, top)
        return IdentifyResult(matches=[MatchInfo(**vars(m)) for m in matches], threshold=model.threshold,
                              face=FaceInfo(**face.info()),
                              gallery={"people": gallery.people, "images": len(gallery.paths),
                                       "skipped": len(gallery.skipped), "embedded_at_start": gallery.embedded})  # fmt: skip

    @app.get("/model", responses={401: {"model": ErrorBody}}, dependencies=[Depends(authorised)])
    async def model_info() -> dict:
        """The model served: its name, embedding size, distance, threshold and how it was chosen, its
        alignment and the versions it was exported and is served with. No file paths."""
        s = model.sidecar
        return {"name": s.file, "format": s.format, "sha256": s.sha256, "embedding_dim": s.embedding_dim,
                "input_size": s.input_size, "distance": s.distance, "threshold": model.threshold,
                "threshold_chosen": THRESHOLD_CHOSEN.get(model.threshold_source or "", str(model.threshold_source)),
                "alignment": s.alignment, "backend": model.engine.backend, "device": model.engine.device,
                "versions": {"served_by": __version__, "exported_with": s.exported_with}}  # fmt: skip

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
