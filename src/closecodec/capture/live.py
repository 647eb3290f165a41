"""Live captures: packets from the system's capture tool, or from a file still being written (docs/live.md).

:class:`LiveCapture` starts tcpdump, or dumpcap (Wireshark's capture engine) for
several interfaces or where there is no tcpdump, writing the packets to a pipe, and
reads that pipe as a capture: the packet reader takes what the pipe has, so each
record comes out as soon as its packet is in. :class:`IdlePipe` tells when reading a
pipe is about to wait for its writer, the moment to write out what was found. A file
still being written is followed by ``files.FollowedFile`` (the reader's ``follow``
option).
"""

from __future__ import annotations

import io
import select
import shutil
import signal
import subprocess
import threading
from time import monotonic
from typing import Any, BinaryIO, Callable, List, Optional, Sequence, TextIO

from .files import POLL_SECONDS

__all__ = ["STOP_SIGNALS", "CaptureError", "IdlePipe", "LiveCapture", "call_after", "relay", "start_aside"]

#: The signals that stop a live run (the first Ctrl-C, a terminal's hang-up, a polite kill).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
#: The kernel buffer the capture tool is given (tcpdump's -B, in KiB; dumpcap's, in MiB).
CAPTURE_BUFFER_KIB = 32768
#: The longest :class:`IdlePipe` reads a pipe that never runs dry before it calls ``idle`` anyway.
IDLE_SECONDS = 0.1
_TOOLS = ("tcpdump", "dumpcap")
_PERMISSION = ("permission", "not permitted", "privilege")


class CaptureError(Exception):
    """A live capture that cannot start, or whose tool failed (the message says what to do)."""


class LiveCapture:
    """Packets from network interfaces, through tcpdump or dumpcap writing to a pipe.

    Args:
        interfaces: the interfaces (names as the tool takes them: ``lo``, ``eth0``,
            ``any``); several need dumpcap.
        capture_filter: a capture filter, as tcpdump takes it (``tcp port 8080``).
        count: stop after this many packets (the tool's ``-c``).
        messages: where the tool's own messages go (its packet counts, its errors), line by line,
            and the line saying that it captures.

    :meth:`start` starts the tool; :attr:`file` is then the pipe to read (pcapng from
    dumpcap, pcap from tcpdump). :meth:`stop` asks the tool to stop (it writes what it
    has and closes the pipe, so the reader comes to the end); :meth:`close` stops it
    and waits for it, then raises :class:`CaptureError` if it failed.
    """

    def __init__(self, interfaces: Sequence[str], capture_filter: Optional[str] = None, count: Optional[int] = None,
                 messages: Optional[Callable[[str], None]] = None) -> None:
        if not interfaces:
            raise ValueError("a live capture needs an interface")
        if count is not None and count < 1:
            raise ValueError(f"the packet count must be at least 1, not {count}")
        self.interfaces = list(interfaces)
        self.capture_filter = capture_filter
        self.count = count
        self.tool: Optional[str] = None
        self.file: Optional[BinaryIO] = None
        self._messages = messages
        self._said: List[str] = []
        self._process: Optional[subprocess.Popen] = None
        self._relay: Optional[threading.Thread] = None
        self._listening = threading.Event()  # tcpdump said it is listening
        self._lock = threading.Lock()
        self._stopped = False

    def command(self) -> List[str]:
        """The tool's command line: tcpdump on ``PATH`` for one interface (each packet as it comes),
        dumpcap for several, or where there is no tcpdump.

        Raises:
            CaptureError: neither is there, or only tcpdump for several interfaces.
        """
        found = {tool: shutil.which(tool) for tool in _TOOLS}
        if found["tcpdump"] and (len(self.interfaces) == 1 or not found["dumpcap"]):
            if len(self.interfaces) > 1:
                raise CaptureError("tcpdump captures on one interface: install dumpcap (Debian and Ubuntu: "
                                   "wireshark-common; it comes with tshark) to capture on several")
            self.tool = "tcpdump"
            # Immediate mode: each packet as it is captured (libpcap's default buffer waits up to a second).
            # It rings the kernel's buffer in frames as large as a packet can be (64 KiB on loopback): the
            # default 2 MiB is 31 of them, which a busy machine overran (half of 84 packets dropped in a
            # test), so the buffer is 32 MiB (for dumpcap too).
            command = [found["tcpdump"], "--immediate-mode", "-B", str(CAPTURE_BUFFER_KIB), "-U", "-w", "-",
                       "-i", self.interfaces[0]]
            if self.count is not None:
                command += ["-c", str(self.count)]
            if self.capture_filter is not None:
                command += [self.capture_filter]
            return command
        if found["dumpcap"]:
            self.tool = "dumpcap"  # packets come out within its read timeout, 250 ms
            command = [found["dumpcap"], "-q", "-B", str(CAPTURE_BUFFER_KIB // 1024), "-w", "-"]  # -B in MiB
            if self.capture_filter is not None:
                command += ["-f", self.capture_filter]  # before the first -i: every interface's filter
            for interface in self.interfaces:
                command += ["-i", interface]
            if self.count is not None:
                command += ["-c", str(self.count)]
            return command
        raise CaptureError("capturing needs tcpdump or dumpcap on PATH, and neither is there: install one "
                           "(Debian and Ubuntu: tcpdump, which is often in /usr/sbin, or tshark)")

    def start(self) -> BinaryIO:
        """Start the tool and wait until it captures (or fails); return the pipe it writes the packets to
        (an empty one when stopped before)."""
        command = self.command()
        with self._lock:  # a stop() from another thread comes before or after the tool is there, not between
            if self._stopped:
                self.file = io.BytesIO()
                return self.file
            try:
                # Its own session: Ctrl-C reaches this process alone, which then asks the tool to stop, so
                # that the packets it holds still come through the pipe.
                self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, start_new_session=True)
            except OSError as error:
                raise CaptureError(f"cannot start {self.tool}: {error.strerror or error}") from None
        self._relay = threading.Thread(target=self._relay_messages, name=f"closecodec-{self.tool}", daemon=True)
        start_aside(self._relay)
        self.file = self._process.stdout
        self._wait_until_capturing()
        return self.file

    def _wait_until_capturing(self) -> None:
        """Wait until the tool captures: dumpcap has written its file header (its "Capturing on" comes
        before its capture starts), tcpdump has said it is listening (its header waits for the first
        packet); or until it has ended. Then say so."""
        assert self._process is not None and self.file is not None
        while self._process.poll() is None and not self._stopped:
            if self.tool == "dumpcap":
                # Readable with bytes to read: the header (at the pipe's end, readable with none).
                if select.select([self.file], [], [], POLL_SECONDS)[0] and self.file.peek(1):
                    break
            elif self._listening.wait(POLL_SECONDS):
                break
        else:
            return
        if self._messages is not None:
            self._messages(f"capturing on {', '.join(self.interfaces)} with {self.tool} (Ctrl-C stops)")

    def _relay_messages(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if "listening on" in line:
                self._listening.set()
            if not line or line.startswith(("File: ", "Capturing on")) or "listening on" in line:
                continue  # the pipe's name, and what start says once the tool does capture
            self._said.append(line)
            del self._said[:-20]
            if self._messages is not None:
                self._messages(line)

    def stop(self) -> None:
        """Ask the tool to stop capturing (as Ctrl-C would); the pipe then ends. From any thread (not a
        signal handler: it takes a lock)."""
        with self._lock:
            self._stopped = True
            process = self._process
        if process is not None and process.poll() is None:
            try:
                process.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Stop the tool and wait for it (it is killed after 10 s).

        Raises:
            CaptureError: it failed (not stopped or killed here): what it said, and what to do when it
                lacked the permission to capture.
        """
        process = self._process
        if process is None:
            return
        self.stop()
        self._process = None
        if process.stdout is not None:
            process.stdout.close()  # read to its end, or given up: a tool blocked writing to it can end
        killed = False
        try:
            status = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
            killed = True
        if self._relay is not None:
            self._relay.join(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        # Stopped by SIGINT, it exits 0 or of the signal; of SIGPIPE when the pipe was given up.
        if not killed and status not in (0, -signal.SIGINT, -signal.SIGPIPE):
            said = " ".join(self._said)
            advice = ""
            if any(word in said.lower() for word in _PERMISSION):
                advice = (f"; capturing needs root, or {self.tool} allowed to capture (Debian and Ubuntu, for "
                          "dumpcap: dpkg-reconfigure wireshark-common, then join the wireshark group)")
            what = "its messages are above" if self._messages is not None else (said or "no message")
            raise CaptureError(f"{self.tool} failed (exit status {status}): {what}{advice}")

    def __enter__(self) -> "LiveCapture":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class IdlePipe(io.RawIOBase):
    """A pipe read as its writer writes, calling ``idle()`` before each read that would wait for the
    writer, and before a read at least every :data:`IDLE_SECONDS` while the writer keeps the pipe full:
    what was found in the bytes before can be written out then, rather than record by record
    (``cat big.pcap | closecodec capture -`` read at full speed waits rarely).

    Reads return what the pipe has (one read, as a raw file's), so a packet reader
    takes each packet as soon as its bytes are in. ``pipe`` is a binary file with a
    descriptor (a buffered one's own buffer is read first); it is not closed here.

    Raises:
        OSError, ValueError: ``pipe`` has no descriptor, or the system has no ``poll()``.
    """

    def __init__(self, pipe: BinaryIO, idle: Callable[[], None]) -> None:
        super().__init__()
        if not hasattr(select, "poll"):
            raise OSError("no poll() on this system")
        self._poll = select.poll()
        self._poll.register(pipe.fileno(), select.POLLIN)
        self._read = getattr(pipe, "readinto1", pipe.readinto)
        self._idle = idle
        self._idled = monotonic()
        self.name = getattr(pipe, "name", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        now = monotonic()
        # Nothing to read now (the writer's end closed would answer), or a busy pipe not idle for a while.
        if now - self._idled >= IDLE_SECONDS or not self._poll.poll(0):
            self._idled = now
            self._idle()
        return self._read(buffer)


def start_aside(thread: threading.Thread) -> None:
    """Start a helper thread with :data:`STOP_SIGNALS` blocked in it, so that the kernel delivers them to
    the main thread, where they interrupt a read of a quiet pipe and their Python handler runs (the second
    Ctrl-C raises ``KeyboardInterrupt`` there)."""
    if hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread():
        before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the new thread starts with this mask
        try:
            thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
    else:
        thread.start()


def call_after(seconds: float, call: Callable[[], None]) -> threading.Timer:
    """Call ``call`` after ``seconds`` (a daemon timer, started aside; cancel it when done)."""
    timer = threading.Timer(seconds, call)
    timer.daemon = True
    start_aside(timer)
    return timer


def relay(err: TextIO) -> Callable[[str], None]:
    """Write a tool's message to ``err`` as one of closecodec's."""
    def say(line: str) -> None:
        err.write(f"closecodec capture: {line}\n")
        err.flush()
    return say
