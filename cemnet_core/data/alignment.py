"""Dynamic time warping of two mel sequences (paper Sec. III-B: "a temporal alignment algorithm [51] is
utilized to synchronize speeches of varying lengths").

The Audio Emotion Enhancement module reconstructs one utterance from the content of another spoken by the
same speaker in a different emotion (Eq. 5). The two recordings differ in tempo, so before a loss compares
them frame by frame the second one is warped onto the time axis of the first:

- :func:`dtw_path`: the classic DTW (steps (1,0), (0,1), (1,1), Euclidean frame distance), optionally inside
  a Sakoe-Chiba band; the cumulative cost is filled one row at a time (the leftward steps of a row are a
  running minimum), so the work is vectorised in numpy (no Python loop over cells).
- :func:`warp_to`: resample ``b`` onto ``a``'s frames along that path (frames of ``b`` matched to the same
  frame of ``a`` are averaged), so the result has ``a``'s length; :func:`warp_along` does it for a path
  already computed (the cross-reconstruction dataset caches paths, not warped mels).

Shapes: ``S`` mel frames, ``F`` mel bins.
"""

from __future__ import annotations

import numpy as np


def _check(name: str, sequence: np.ndarray) -> np.ndarray:
    array = np.asarray(sequence, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty sequence of shape (S, F), got {array.shape}")
    return array


def frame_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between every frame of ``a`` (Sa, F) and of ``b`` (Sb, F): ``(Sa, Sb)``."""
    a, b = _check("a", a), _check("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need the same number of bins F, got {a.shape[1]} and {b.shape[1]}")
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T  # (Sa, Sb)
    return np.sqrt(np.maximum(squared, 0.0))


def dtw_path(a: np.ndarray, b: np.ndarray, band: float | None = None) -> tuple[np.ndarray, float]:
    """Optimal monotone alignment of ``a`` (Sa, F) and ``b`` (Sb, F).

    band: if given, a Sakoe-Chiba band as a fraction of the longer length around the (stretched) diagonal;
    cells outside it are forbidden. ``None`` allows every path.
    Returns ``(path, cost)``: ``path`` int64 ``(L, 2)`` of ``(i, j)`` pairs from ``(0, 0)`` to
    ``(Sa-1, Sb-1)``, each step advancing ``i``, ``j`` or both by one; ``cost`` the summed frame distance
    along it divided by ``L``.
    """
    distances = frame_distances(a, b)  # (Sa, Sb)
    rows, cols = distances.shape
    spans = [(0, cols)] * rows  # columns [lo, hi) allowed in each row
    if band is not None:
        if band <= 0:
            raise ValueError(f"band must be a positive fraction, got {band}")
        width = max(band * max(rows, cols), 1.0)
        columns = np.arange(cols)
        spans = []
        for i in range(rows):
            diagonal = i * (cols - 1) / max(rows - 1, 1)  # where j would be on the stretched diagonal
            inside = np.flatnonzero(np.abs(columns - diagonal) <= width)
            spans.append((int(inside[0]), int(inside[-1]) + 1) if len(inside) else (0, 0))

    # cost[i+1, j+1] = distances[i, j] + min(cost[i, j], cost[i, j+1], cost[i+1, j]), one row at a time:
    # with m[j] = distances[i, j] + min(cost[i, j], cost[i, j+1]) (the diagonal and upward steps) and D the
    # running sum of the row's distances, the chain of leftward steps unrolls to
    # cost[i+1, j+1] = D[j] + min_{l <= j} (m[l] - D[l]), a running minimum: each row is one vector step.
    cost = np.full((rows + 1, cols + 1), np.inf)
    cost[0, 0] = 0.0
    for i, (lo, hi) in enumerate(spans):
        if lo >= hi:
            continue
        row = distances[i, lo:hi]
        reach = row + np.minimum(cost[i, lo:hi], cost[i, lo + 1 : hi + 1])  # m over the span
        running = np.cumsum(row)  # D
        cost[i + 1, lo + 1 : hi + 1] = running + np.minimum.accumulate(reach - running)
    if not np.isfinite(cost[rows, cols]):
        raise ValueError("no alignment fits inside the band; widen it or pass band=None")

    # Backtrack from the end; ties prefer the diagonal step.
    path = [(rows - 1, cols - 1)]
    i, j = rows, cols
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(steps, key=lambda cell: cost[cell])
        path.append((i - 1, j - 1))
    path_array = np.array(path[::-1], dtype=np.int64)  # (L, 2)
    return path_array, float(cost[rows, cols] / len(path_array))


def warp_to(a: np.ndarray, b: np.ndarray, band: float | None = None) -> np.ndarray:
    """``b`` (Sb, F) warped onto the time axis of ``a`` (Sa, F) by DTW: ``(Sa, F)`` in ``b``'s dtype.

    Row ``i`` of the result is the mean of the frames of ``b`` that the path matches to frame ``i`` of ``a``.
    """
    path, _ = dtw_path(a, b, band)
    return warp_along(path, b, np.asarray(a).shape[0])


def warp_along(path: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """``b`` (Sb, F) resampled onto ``rows`` frames along a :func:`dtw_path` ``path`` (L, 2): ``(rows, F)``.

    Row ``i`` is the mean of the frames ``b[j]`` with ``(i, j)`` on the path (a cached path can be reused).
    """
    b = np.asarray(b)
    if path.ndim != 2 or path.shape[1] != 2 or path[-1, 0] != rows - 1 or path[-1, 1] != b.shape[0] - 1:
        raise ValueError(f"path (L, 2) must end at ({rows - 1}, {b.shape[0] - 1}), got shape {path.shape}")
    sums = np.zeros((rows, b.shape[1]), dtype=np.float64)
    counts = np.zeros(rows, dtype=np.float64)
    np.add.at(sums, path[:, 0], b[path[:, 1]].astype(np.float64))
    np.add.at(counts, path[:, 0], 1.0)
    return (sums / counts[:, None]).astype(b.dtype)  # every row of a is on the path, so counts >= 1
