"""Where capture files are: local paths, or URLs that fsspec opens (docs/capture.md, "Files and URLs").

A path of the form ``PROTOCOL://...`` (``s3://bucket/day/``, ``gcs://...``,
``http://host/trace.pcap``, ``file:///data/trace.pcap``) is opened, listed and sized
through fsspec, with the protocol's own package (s3fs, gcsfs...) as fsspec asks for
it; any other path is the local file system's. fsspec is an optional dependency
(the dask extra brings it): without it a URL is an :class:`ImportError` saying so.
"""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO, List, Tuple

__all__ = ["file_size", "is_dir", "is_url", "list_dir", "open_file"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``PROTOCOL://...``) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


def _file_system(url: str) -> Tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise ImportError(f"{url}: reading from URLs needs fsspec: pip install fsspec "
                          "(and the package of its protocol, such as s3fs)") from None
    try:
        return url_to_fs(url)
    except ValueError as error:  # a protocol fsspec does not know
        raise OSError(f"{url}: {error}") from None


def open_file(path: str) -> BinaryIO:
    """The file at ``path`` (or URL), open for reading bytes.

    Raises:
        OSError: it cannot be opened (``FileNotFoundError`` where it is not there).
        ImportError: a URL without fsspec, or without its protocol's package.
    """
    if not is_url(path):
        return open(path, "rb")
    fs, inner = _file_system(path)
    return fs.open(inner, "rb")


def file_size(path: str) -> int:
    """The size in bytes of the file at ``path`` (or URL); OSError where it is not there."""
    if not is_url(path):
        return os.path.getsize(path)
    fs, inner = _file_system(path)
    size = fs.size(inner)
    if size is None:
        raise OSError(f"{path}: its size is not known")
    return int(size)


def is_dir(path: str) -> bool:
    """Whether ``path`` (or URL) is a directory."""
    if not is_url(path):
        return os.path.isdir(path)
    fs, inner = _file_system(path)
    return bool(fs.isdir(inner))


def list_dir(path: str) -> List[str]:
    """The files directly in the directory ``path`` (or URL), by name, as paths (or URLs) under ``path``.

    Raises:
        OSError: it cannot be listed.
    """
    if not is_url(path):
        return [inside for inside in (os.path.join(path, name) for name in sorted(os.listdir(path)))
                if os.path.isfile(inside)]
    fs, inner = _file_system(path)
    names = sorted(entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(inner, detail=True)
                   if entry.get("type") == "file")
    return [f"{path.rstrip('/')}/{name}" for name in names]  # as the directory was spelled
