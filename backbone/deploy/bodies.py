"""What a request to the service carries: its images, as multipart form fields or as base64 in JSON.

Both ways name the images by the same fields (``image_a``, ``image_b``; ``image``)::

    curl -F image_a=@a.jpg -F image_b=@b.jpg http://127.0.0.1:8000/verify
    curl -H 'Content-Type: application/json' \\
         -d '{"image_a": "<base64>", "image_b": "data:image/jpeg;base64,<base64>"}' http://127.0.0.1:8000/verify

A JSON value is base64 (standard alphabet, padding optional) or a data URL of it, as deepface's
and CompreFace's APIs take them. Every problem is a :class:`ServiceError` naming the field: 422 a
missing field or one of the wrong kind, 400 JSON or base64 that does not parse, 413 an image over
the upload limit, 415 a body that is neither multipart nor JSON or a part that is not an image.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from backbone.deploy.settings import MB

IMAGE_TYPES = ("image/", "application/octet-stream")  # what an image part may be declared as (curl -F: by extension)
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)


class ServiceError(HTTPException):
    """A request the service refuses: its status, a short code and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(status, message)
        self.code, self.message, self.field = code, message, field


@dataclass
class Upload:
    """One image of a request: its field, its bytes, and the file name it came with (if any)."""

    field: str
    data: bytes
    filename: str | None = None

    @property
    def name(self) -> str:
        """How messages name it: the field, and the file name when the client gave one."""
        return f"{self.field} ({self.filename[:100]})" if self.filename else self.field


def body_kind(request: Request) -> str:
    """``multipart`` or ``json`` from the request's content type; else 415."""
    kind = request.headers.get("content-type", "").lower()
    if kind.startswith("multipart/form-data"):
        return "multipart"
    if kind.startswith("application/json"):
        return "json"
    raise ServiceError(415, "unsupported-media-type", f"the request is {kind or 'without a content type'}: send "
                       "the images as multipart/form-data, or as base64 in application/json")  # fmt: skip


async def read_images(request: Request, fields: Sequence[str], max_bytes: int) -> list[Upload]:
    """The images of ``fields``, in that order, from a multipart or a JSON body."""
    if body_kind(request) == "json":
        return images_of(await read_json(request), fields, max_bytes)
    form = await request.form()
    uploads = []
    for field in fields:
        part = form.get(field)
        if part is None:
            raise ServiceError(422, "missing-field", f"missing field {field!r}", field)
        if not isinstance(part, UploadFile):
            raise ServiceError(422, "invalid-field", f"{field}: a text field, not a file: send the image as a file "
                               "part (curl -F field=@file), or base64 in a JSON body", field)  # fmt: skip
        kind = (part.content_type or "").lower()
        if not kind.startswith(IMAGE_TYPES):
            raise ServiceError(415, "unsupported-media-type",
                               f"{field}: content type {kind or 'none'!r} is not an image type (image/*)", field)  # fmt: skip
        data = await part.read(max_bytes + 1)
        uploads.append(Upload(field, _bounded(data, field, max_bytes), part.filename))
    return uploads


async def read_json(request: Request) -> Any:
    """The request's JSON body; 400 when it does not parse."""
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError) as exc:
        raise ServiceError(400, "bad-json", f"the body is not JSON ({str(exc)[:120]})") from None


def images_of(doc: Any, fields: Sequence[str], max_bytes: int, where: str = "") -> list[Upload]:
    """The base64 images of ``fields`` in the JSON object ``doc`` (``where``: its place in a larger
    body, "pairs[3]." for instance, so that messages name the exact field)."""
    if not isinstance(doc, dict):
        raise ServiceError(422, "invalid-field", f"{where.rstrip('.') or 'the body'} must be a JSON object with "
                           f"{', '.join(fields)}", where.rstrip(".") or None)  # fmt: skip
    return [Upload(where + field, _bounded(decode_base64(doc.get(field), where + field), where + field, max_bytes))
            for field in fields]  # fmt: skip


def decode_base64(value: Any, field: str) -> bytes:
    """The bytes of a base64 string or data URL; a ServiceError naming ``field`` otherwise."""
    if value is None:
        raise ServiceError(422, "missing-field", f"missing field {field!r}", field)
    if not isinstance(value, str):
        raise ServiceError(422, "invalid-field", f"{field}: an image as a base64 string, got {type(value).__name__}",
                           field)  # fmt: skip
    text = _DATA_URL.sub("", value.strip(), count=1)
    text = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(400, "bad-base64", f"{field}: not base64 (nor a data URL of it)", field) from None


def _bounded(data: bytes, field: str, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise ServiceError(413, "upload-too-large", f"{field}: the image is over the limit of {max_bytes / MB:g} MB",
                           field)  # fmt: skip
    return data
