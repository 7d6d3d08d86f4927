"""data/mel_stream: mel rows by range, streamed from a file or held in memory."""

from __future__ import annotations

import numpy as np
import pytest

from cemnet_core.data.audio import log_mel
from cemnet_core.data.mel_stream import MelArray, MelStream


def test_mel_stream_rows_equal_the_whole_file_spectrogram() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 3 + 137) * 0.1).astype(np.float32)
    whole = log_mel(audio)
    chunks = (audio[i : i + 3001] for i in range(0, len(audio), 3001))
    stream = MelStream(chunks, len(audio))
    assert stream.num_rows == len(whole)
    for lo, hi in ((0, 10), (5, 40), (40, 41), (100, 180), (180, len(whole))):
        np.testing.assert_allclose(stream.rows(lo, hi), whole[lo:hi], atol=1e-4)
    with pytest.raises(ValueError, match="backwards"):
        stream.rows(0, 5)


def test_mel_array_rows_are_the_array_rows() -> None:
    mel = np.arange(40, dtype=np.float32).reshape(10, 4)
    rows = MelArray(mel)
    assert rows.num_rows == 10
    np.testing.assert_array_equal(rows.rows(2, 5), mel[2:5])
    with pytest.raises(ValueError, match="lo < hi"):
        rows.rows(5, 11)
