"""History rows moved out of the terminal emulator, kept compressed.

libghostty keeps ~1 KB per history row at 120 columns (its pages hold every cell), so a
session that printed 10,000 lines holds ~7 MB in the daemon: with 30 sessions the daemon
grew by 200 MB over an afternoon of ordinary use. Once a session's output pauses, its
history is read out (~1 us a row), stored here as zlib-compressed JSON in chunks (a short
plain line costs a few bytes), and cleared from the emulator. Reads decompress one chunk
at a time and keep the last one decoded.
"""

from __future__ import annotations

import json
import zlib
from collections import deque

from workbench.protocol.terminal import Row

CHUNK_ROWS = 512


def _encode(rows: list[Row]) -> bytes:
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)


def _decode(blob: bytes) -> list[Row]:
    raw = json.loads(zlib.decompress(blob))
    return [[(str(t), int(fg), int(bg), int(fl)) for t, fg, bg, fl in row] for row in raw]


class ColdHistory:
    """The oldest history rows of one screen, oldest first, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[tuple[int, bytes]] = deque()  # (rows, compressed rows)
        self._skip = 0  # rows of the first chunk already dropped
        self._len = 0
        self._cached: tuple[int, list[Row]] | None = None  # (chunk's first index, rows)

    def __len__(self) -> int:
        return self._len

    def nbytes(self) -> int:
        return sum(len(blob) for _, blob in self._chunks)

    def extend(self, rows: list[Row]) -> None:
        """Append rows (newer than every row held), then drop the oldest beyond `limit`."""
        for i in range(0, len(rows), CHUNK_ROWS):
            part = rows[i : i + CHUNK_ROWS]
            self._chunks.append((len(part), _encode(part)))
            self._len += len(part)
        self._drop_over_limit()

    def _drop_over_limit(self) -> None:
        over = self._len - self.limit
        while over > 0 and self._chunks:
            n, _ = self._chunks[0]
            left = n - self._skip
            if left <= over:
                self._chunks.popleft()
                self._skip = 0
                self._len -= left
                over -= left
            else:
                self._skip += over
                self._len -= over
                over = 0
        self._cached = None

    def rows(self, start: int, count: int) -> list[Row]:
        """Rows [start, start+count) of what is held, clipped; row 0 is the oldest."""
        end = min(start + count, self._len)
        out: list[Row] = []
        pos = -self._skip  # index of the current chunk's first row
        for n, blob in self._chunks:
            lo, hi = max(start, pos), min(end, pos + n)
            if lo < hi:
                rows = self._chunk(pos, blob)
                out.extend([list(r) for r in rows[lo - pos : hi - pos]])
            pos += n
            if pos >= end:
                break
        return out

    def _chunk(self, first: int, blob: bytes) -> list[Row]:
        if self._cached is None or self._cached[0] != first:
            self._cached = (first, _decode(blob))
        return self._cached[1]
