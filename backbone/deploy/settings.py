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
    """

    api_key: str | None = None
    max_upload_bytes: int = 10 * MB
    max_batch: int = 32
    batch_window: float = 0.005

    def __repr__(self) -> str:  # never print the key
        return (f"ServiceSettings(api_key={'set' if self.api_key else None}, max_upload_bytes={self.max_upload_bytes}, "
                f"max_batch={self.max_batch}, batch_window={self.batch_window})")  # fmt: skip
