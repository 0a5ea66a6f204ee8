"""backbone: the helper library of the face-verification workbook.

``backbone.verify(a, b)`` and ``backbone.identify(probe, gallery)`` do the common jobs in one call
(``backbone.api``; PyTorch loads on first use, not on ``import backbone``).
"""

from backbone.labels import DIFFERENT, SAME

__version__ = "0.1.0"
__all__ = ["SAME", "DIFFERENT", "__version__", "verify", "identify"]


def __getattr__(name: str):
    if name in ("verify", "identify"):
        from backbone import api

        return getattr(api, name)
    raise AttributeError(f"module 'backbone' has no attribute {name!r}")
