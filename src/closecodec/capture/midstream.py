# cython: annotation_typing=False
"""Mid-stream recognition: WebSocket and MQTT connections whose start the capture lacks.

A connection whose first bytes are neither an HTTP upgrade nor an MQTT CONNECT
is held while its bytes are tried as WebSocket frames and as MQTT packets
(docs/capture.md, "Mid-stream recognition"). In each direction, every offset of
the first :data:`SEARCH` bytes and every segment start is a candidate start of
the first whole frame; a candidate lives while the frames from it tile the
bytes (the rooms' ``ws_tile`` and ``mqtt_tile`` say by which rules). The
connection is recognised when, taking the best candidate of each direction
that holds bytes, each holds a whole frame or packet, the two directions agree
(one masks and the other does not; one sends as a client and the other as a
server), and together they hold :data:`MIN_UNITS` whole frames or packets (a
direction whose start is not a segment start, found by trying every offset,
holds them on its own); or,
when it ends, when a direction's frames fill it exactly and end with a close
frame or DISCONNECT.

Plain Python, used by :mod:`closecodec.capture.records` once per segment of a
connection being recognised; the byte loops are the rooms' twins. Where a compiler
is available it is also compiled by Cython (pure-Python mode, with the
declarations in ``midstream.pxd``), as records.py is.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

__all__ = ["MIN_MESSAGES", "MIN_UNITS", "SEARCH", "Candidates", "Verdict", "recognise"]

#: Offsets of a direction's first bytes tried as the start of its first whole frame (segment starts
#: further on are tried too).
SEARCH = 4096
#: Whole frames or packets, both directions together, that recognise a connection before it ends.
MIN_UNITS = 4
#: Binary messages in a row that parse as Diffusion messages and make a WebSocket connection Diffusion.
MIN_MESSAGES = 3

_WEBSOCKET, _MQTT = 0, 1


class Candidates:
    """One direction's held bytes and candidate starts, each with what its protocol's tile function last
    said."""

    __slots__ = ("data", "alive", "searched", "segments", "fresh", "walked")

    def __init__(self) -> None:
        self.data = bytearray()  # the direction's held bytes
        # Per protocol, start offset (in those bytes) -> the tile result.
        self.alive: Tuple[Dict[int, tuple], Dict[int, tuple]] = ({}, {})
        self.searched = 0  # offsets of the first SEARCH bytes below this were made candidates
        self.segments: Set[int] = set()  # where each held segment starts (each one a candidate)
        self.fresh: List[int] = []  # those not tried yet
        self.walked = 0  # the bytes the living candidates were walked over

    def add(self, piece: Any) -> None:
        """Hold the next segment's bytes; its start becomes a candidate."""
        start = len(self.data)
        self.segments.add(start)
        self.fresh.append(start)
        self.data += piece

    def update(self, tiles: Sequence[Any], max_message: int, window: bool) -> None:
        """Walk the living candidates over the held bytes, if they grew, and try the new ones: the new
        segment starts, and with ``window`` every offset of the first :data:`SEARCH` bytes (the caller
        asks for those only when the segment starts do not tile). Candidates whose walks met (the same
        place, the same state) go on alike: only the best of them is kept, so few ever live."""
        data = self.data
        size = len(data)
        fresh = self.fresh
        self.fresh = []
        if window and self.searched < min(size, SEARCH):
            fresh += range(self.searched, min(size, SEARCH))
            self.searched = min(size, SEARCH)
        grew = size != self.walked
        self.walked = size
        for protocol in range(2):
            tile = tiles[protocol]
            alive = self.alive[protocol]
            starts = [s for s, result in alive.items() if result[0] < size] if grew else []
            if not starts and not fresh:
                continue
            for start in starts + fresh:
                result = tile(data, start, max_message)
                if result is None:
                    alive.pop(start, None)
                else:
                    alive[start] = result
            self._merge(alive)

    def _merge(self, alive: Dict[int, tuple]) -> None:
        """Keep, of the candidates whose walks stand at the same place in the same state, the best."""
        kept: Dict[tuple, int] = {}
        for start, result in alive.items():
            where = (result[0],) + result[2:]  # all but the count of whole units
            other = kept.get(where)
            if other is None or self._rank(start, result) > self._rank(other, alive[other]):
                kept[where] = start
        if len(kept) < len(alive):
            for start in [s for s in alive if kept[(alive[s][0],) + alive[s][2:]] != s]:
                del alive[start]

    def _rank(self, start: int, result: tuple) -> Tuple[int, bool, int]:
        """How good a start is: the most whole units, then a segment start, then the first."""
        return result[1], start in self.segments, -start

    def alive_any(self) -> bool:
        """Whether a candidate of either protocol lives."""
        return bool(self.alive[0]) or bool(self.alive[1])

    def best(self, protocol: int) -> Optional[Tuple[int, tuple]]:
        """The living candidate of the best rank (:meth:`_rank`), or None."""
        alive = self.alive[protocol]
        chosen = -1
        key = None
        for start, result in alive.items():
            rank = self._rank(start, result)
            if key is None or rank > key:
                chosen, key = start, rank
        return None if chosen < 0 else (chosen, alive[chosen])


class Verdict:
    """What a connection was recognised as: ``kind`` (``"websocket"`` or ``"mqtt"``), its ``client``
    direction, where decoding starts in each direction's held bytes, and the MQTT version the packets
    show (5, a CONNECT's level, or 0)."""

    __slots__ = ("kind", "client", "starts", "version")

    def __init__(self, kind: str, client: int, starts: Tuple[int, int], version: int) -> None:
        self.kind = kind
        self.client = client
        self.starts = starts
        self.version = version

    def __repr__(self) -> str:
        return f"Verdict({self.kind!r}, client={self.client}, starts={self.starts}, version={self.version})"


def recognise(sizes: Tuple[int, int], candidates: Tuple[Candidates, Candidates], ended: bool,
              to_lower_port: bool) -> Optional[Verdict]:
    """The verdict on a connection from its directions' candidates, or None while it cannot be told.

    Args:
        sizes: the bytes held in each direction.
        candidates: each direction's :class:`Candidates`, updated over those bytes.
        ended: the connection ended (or holds all it may): a direction's frames that end exactly
            with a close frame or DISCONNECT are enough then.
        to_lower_port: direction 0 is sent to the lower port, taken as the server's when the bytes
            do not tell which side is the client.
    """
    best = None
    for protocol in (_WEBSOCKET, _MQTT):
        found = _judge(protocol, sizes, candidates, ended, to_lower_port)
        if found is not None and (best is None or found[0] > best[0]):  # the most whole units; WebSocket on a tie
            best = found
    return None if best is None else best[1]


def _judge(protocol: int, sizes: Tuple[int, int], candidates: Tuple[Candidates, Candidates], ended: bool,
           to_lower_port: bool) -> Optional[Tuple[int, Verdict]]:
    # ws_tile gives (end, frames, masked, closed, ...); mqtt_tile (end, packets, sender, version, closed).
    closed_at = 3 if protocol == _WEBSOCKET else 4
    picks: List[Optional[Tuple[int, tuple]]] = [None, None]
    for d in (0, 1):
        if sizes[d]:
            picks[d] = candidates[d].best(protocol)
            if picks[d] is None:
                return None  # a direction whose bytes are not this protocol
    units = 0
    closing = False
    silent = False  # a direction holds bytes but no whole frame: it has not shown that it agrees
    for d in (0, 1):
        pick = picks[d]
        if pick is not None:
            units += pick[1][1]
            silent = silent or pick[1][1] == 0
            if pick[1][1] < MIN_UNITS and pick[0] not in candidates[d].segments:
                return None  # a start found by trying every offset needs the evidence on its own
            # Frames that fill the direction exactly and end with a close, when nothing more will come.
            if ended and pick[1][closed_at] and pick[0] == 0 and pick[1][0] == sizes[d]:
                closing = True
    if silent or units < MIN_UNITS and not closing:
        return None
    # Which direction is the client's: 1 if it is, 0 if it is not, -1 unknown. A client masks its
    # WebSocket frames (RFC 6455 §5.3) and alone sends some MQTT packets (mqtt_tile's sender 0).
    client_side = [-1, -1]
    for d in (0, 1):
        pick = picks[d]
        if pick is not None and pick[1][2] != -1:
            client_side[d] = pick[1][2] if protocol == _WEBSOCKET else 1 - pick[1][2]
    if client_side[0] != -1 and client_side[0] == client_side[1]:
        return None  # both directions on the same side
    if client_side[0] != -1:
        client = 0 if client_side[0] else 1
    elif client_side[1] != -1:
        client = 1 if client_side[1] else 0
    else:
        client = 0 if to_lower_port else 1
    version = 0
    if protocol == _MQTT:
        for pick in picks:
            if pick is not None and pick[1][3]:
                if version and pick[1][3] != version:
                    return None
                version = pick[1][3]
    starts = (0 if picks[0] is None else picks[0][0], 0 if picks[1] is None else picks[1][0])
    return units, Verdict("websocket" if protocol == _WEBSOCKET else "mqtt", client, starts, version)
