"""Reading text files of outside input (pair, people, triplet, identity and config files).

Every such file is read as UTF-8; a UTF-8 byte-order mark (as some Windows editors write) is
accepted and dropped. Bytes that are not UTF-8, and a file that cannot be read at all, raise a
:class:`~backbone.data.errors.DataError` naming the file (and the line of the first bad byte).
"""

from __future__ import annotations

from pathlib import Path

from backbone.data.errors import DataError, Problem


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path`` (UTF-8, with or without a byte-order mark)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except PermissionError:
        raise DataError(f"cannot read {what} {path}: permission denied") from None
    except IsADirectoryError:
        raise DataError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return decode_text(data, path)


def decode_text(data: bytes, source: str | Path) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped); errors name ``source`` and the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start : exc.start + 1].hex()
        problem = Problem(
            str(source), f"not UTF-8 text: byte 0x{byte} at column {column}; save the file as UTF-8", line
        )
        raise DataError(f"{source}: not UTF-8 text", [problem]) from None


def text_lines(path: str | Path, what: str = "file") -> list[str]:
    """The lines of ``path`` (see :func:`read_text`) without their ``\\n`` or ``\\r\\n`` endings. Only
    those end a line (not ``str.splitlines``'s form feeds and Unicode separators), so line numbers
    are an editor's."""
    text = read_text(path, what)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
