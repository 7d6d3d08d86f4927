"""Mel rows for inference: the whole audio's log-mel spectrogram, read by row range (DESIGN section 2).

:meth:`cemnet_core.pipeline.CEMNetPipeline.animate` reads the mel rows of the frames it renders through
this small interface (``num_rows`` and ``rows(lo, hi)``), so one inference path serves a whole clip held in
memory (:class:`MelArray`, evaluation) and audio of any length streamed from a file (:class:`MelStream`,
``cemnet generate``; memory stays flat in the audio's length).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from cemnet_core.data.audio import MelConfig, log_mel


class MelRows(Protocol):
    """Mel rows of the driving audio, read by range: what ``animate`` needs of its mel source."""

    num_rows: int

    def rows(self, lo: int, hi: int) -> np.ndarray: ...  # (hi - lo, 80)


class MelArray:
    """Mel rows of a spectrogram held in memory: ``mel`` (S, 80) float32."""

    def __init__(self, mel: np.ndarray) -> None:
        if mel.ndim != 2 or mel.shape[0] == 0:
            raise ValueError(f"mel must be a non-empty (S, F) array, got {mel.shape}")
        self.mel = mel
        self.num_rows = int(mel.shape[0])

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Mel rows ``lo .. hi-1`` (0 <= lo < hi <= num_rows): (hi - lo, 80)."""
        if not 0 <= lo < hi <= self.num_rows:
            raise ValueError(f"rows: need 0 <= lo < hi <= {self.num_rows}, got {lo}, {hi}")
        return self.mel[lo:hi]


class MelStream:
    """Rows of the whole audio's log-mel spectrogram, computed chunk by chunk from a stream of samples.

    Each request decodes only the samples its rows need plus 3 hops of context before and 2 after (the
    overlap); since the context covers the STFT window and the pre-emphasis, the rows equal those of
    :func:`log_mel` on the whole file. Requests must not move backwards (``lo`` never decreases).
    """

    def __init__(self, chunks: Iterator[np.ndarray], total_samples: int, config: MelConfig = MelConfig()):
        self.chunks = chunks
        self.total = total_samples
        self.config = config
        self.num_rows = 1 + total_samples // config.hop_length  # S of the whole file
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # global index of self._buffer[0]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Mel rows ``lo .. hi-1`` (0 <= lo < hi <= num_rows): (hi - lo, 80) float32."""
        if not 0 <= lo < hi <= self.num_rows:
            raise ValueError(f"rows: need 0 <= lo < hi <= {self.num_rows}, got {lo}, {hi}")
        hop = self.config.hop_length
        start = hop * max(0, lo - 3)
        stop = min(self.total, hop * (hi + 2))
        if start < self._offset:
            raise ValueError(f"rows: requests must not move backwards (sample {start} < {self._offset})")
        while self._offset + len(self._buffer) < stop:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self._buffer = np.concatenate([self._buffer, chunk])
        self._buffer = self._buffer[start - self._offset :]
        self._offset = start
        mel = log_mel(self._buffer[: stop - start], self.config)  # rows from start // hop
        first = lo - start // hop
        return mel[first : first + hi - lo]
