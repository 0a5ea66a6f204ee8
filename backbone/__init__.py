"""backbone: the helper library of the face-verification workbook."""

from backbone.labels import DIFFERENT, SAME

__version__ = "0.1.0"
__all__ = ["SAME", "DIFFERENT", "__version__"]
