"""The service's settings and names, apart from the service itself: ``backbone serve``'s options
read them without importing FastAPI (so every other command starts without the service stack)."""

from __future__ import annotations

from dataclasses import dataclass

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "BACKBONE_API_KEY"
MB = 1 << 20


@dataclass
class ServiceSettings:
    """How the service runs.

    Args:
        api_key: when set, every request but ``/health`` and the docs needs it in ``X-API-Key``.
        max_upload_bytes: the largest image upload (a request's body may hold two, plus 64 KiB).
        max_batch: the most images in one forward pass.
        batch_window: seconds a forward pass waits for requests that are still decoding their images.
        memory_budget_bytes: the most memory the images being decoded and aligned may take at once
            (an estimate per image from its header: ``image_cost``); a request waits for room, and
            an image that alone would exceed it is refused with 413.
        max_side: images are decoded and aligned at most this long on their longer side.
        body_timeout: seconds a request's body may take to arrive in full (else 408).
        max_batch_pairs: the most pairs one ``/verify/batch`` request may hold.
        max_batch_bytes: the largest ``/verify/batch`` body.
        gallery: a folder of people (one sub-folder of photos each) that ``/identify`` searches.
        gallery_cache: where the gallery's embeddings are kept between starts (None: in memory).
    """

    api_key: str | None = None
    max_upload_bytes: int = 10 * MB
    max_batch: int = 32
    batch_window: float = 0.005
    memory_budget_bytes: int = 1024 * MB
    max_side: int = 1600
    body_timeout: float = 30.0
    max_batch_pairs: int = 32
    max_batch_bytes: int = 64 * MB
    gallery: str | None = None
    gallery_cache: str | None = None

    def __repr__(self) -> str:  # never print the key
        return (f"ServiceSettings(api_key={'set' if self.api_key else None}, max_upload_bytes={self.max_upload_bytes}, "
                f"max_batch={self.max_batch}, batch_window={self.batch_window}, "
                f"memory_budget_bytes={self.memory_budget_bytes}, max_side={self.max_side}, "
                f"body_timeout={self.body_timeout}, max_batch_pairs={self.max_batch_pairs}, "
                f"max_batch_bytes={self.max_batch_bytes}, gallery={self.gallery}, gallery_cache={self.gallery_cache})")  # fmt: skip


DECODE_BYTES_PER_PIXEL = 8  # an image as PIL decodes it (RGBA, then RGB), at the size it is decoded at
WORK_BYTES_PER_PIXEL = 64  # at the working size: the detector's float copies and image pyramid, the crops


def image_cost(size: tuple[int, int], decoded: tuple[int, int], max_side: int) -> int:
    """Bytes one image of ``size`` takes while it is decoded (at ``decoded``: smaller for a large
    JPEG, see ``backbone.data.images.decoded_size``) and aligned (at most ``max_side`` long): what
    the service's memory budget counts (tests/test_serve_memory.py holds a real server to it)."""
    scale = min(1.0, max_side / max(size))
    work = round(size[0] * scale) * round(size[1] * scale)
    return DECODE_BYTES_PER_PIXEL * decoded[0] * decoded[1] + WORK_BYTES_PER_PIXEL * work
