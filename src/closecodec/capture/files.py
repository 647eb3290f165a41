"""Where capture files are: local paths, or URLs that fsspec opens (docs/capture.md, "Files and URLs").

A path of the form ``PROTOCOL://...`` (``s3://bucket/day/``, ``gcs://...``,
``http://host/trace.pcap``, ``file:///data/trace.pcap``) is opened, listed and sized
through fsspec, with the protocol's own package (s3fs, gcsfs...) as fsspec asks for
it; any other path is the local file system's. fsspec is an optional dependency
(the dask extra brings it): without it a URL is an :class:`ImportError` saying so.
"""

from __future__ import annotations

import io
import os
import re
import threading
from typing import Any, BinaryIO, Callable, List, Optional, Tuple

__all__ = ["POLL_SECONDS", "FollowedFile", "file_size", "is_dir", "is_url", "list_dir", "natural_order", "open_file"]

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
        with os.scandir(path) as entries:  # no stat per entry where the file system gives its type
            return [os.path.join(path, name) for name in sorted(entry.name for entry in entries if entry.is_file())]
    fs, inner = _file_system(path)
    names = sorted(entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(inner, detail=True)
                   if entry.get("type") == "file")
    return [f"{path.rstrip('/')}/{name}" for name in names]  # as the directory was spelled


# -- files still being written (the reader's ``follow``; docs/live.md) ----------------------

#: How often a followed file or directory is looked at again when there is nothing new.
POLL_SECONDS = 0.1


#: How much of a followed file's start is kept (:meth:`FollowedFile.as_read`): the pcap or pcapng header and
#: the first packet's time, which tell a ring's file written over from one added to.
HEAD_BYTES = 1024


class FollowedFile(io.RawIOBase):
    """A capture file still being written, read as if it went on: at its end, :meth:`readinto` waits
    (looking again every :data:`POLL_SECONDS`) until more is written, until ``stopped`` is set, or until
    ``done()`` says the file is finished (a rotating capture has gone on to its next file); then it
    returns what there is (0 bytes: the end). A file cut shorter than what was read (written over from
    its start, as a ring going round does) ends there."""

    def __init__(self, path: str, stopped: threading.Event, done: Optional[Callable[[], bool]] = None) -> None:
        super().__init__()
        self.name = path
        self._file = open(path, "rb", buffering=0)
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._read = 0  # bytes read, once it is closed
        self._stopped = stopped
        self._done = done
        self._limit: Optional[int] = None  # once stopped: the file's size then
        self.cut = False  # found shorter than what was read: it ended there
        self._head = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._stopped.is_set():  # what the file holds now, not what is written while it is read
                if self._limit is None:
                    self._limit = os.fstat(self._file.fileno()).st_size
                room = max(0, self._limit - self._file.tell())
                return self._file.readinto(memoryview(buffer)[:room]) or 0 if room else 0
            got = self._file.readinto(buffer)
            if got:
                if len(self._head) < HEAD_BYTES:
                    self._head += bytes(memoryview(buffer)[:min(got, HEAD_BYTES - len(self._head))])
                return got
            if os.fstat(self._file.fileno()).st_size < self._file.tell():
                self.cut = True  # written over: what follows the bytes read is another round's
                return 0
            if self._done is not None and self._done():
                return self._file.readinto(buffer) or 0  # what was written before the next file began
            self._stopped.wait(POLL_SECONDS)

    def as_read(self) -> Tuple[int, int, bytes]:
        """The file as it was read: its inode, the bytes read, and the first of them (``HEAD_BYTES`` at
        most), whatever has been written over it since (closed or not)."""
        return self._inode, self._read if self._file.closed else self._file.tell(), self._head

    def close(self) -> None:
        if not self._file.closed:
            self._read = self._file.tell()
        self._file.close()
        super().close()


def natural_order(path: str) -> Tuple[Any, ...]:
    """A sort key for the files of a rotating capture: by name, numbers by value (``trace.pcap9`` before
    ``trace.pcap10``, as ``tcpdump -C`` numbers them)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", os.path.basename(path)))
