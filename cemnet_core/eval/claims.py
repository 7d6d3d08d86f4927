"""The paper's claims that DESIGN section 9 tests, and their holds / does-not-hold verdict.

Two claims, from Table II and Table IV of the paper:

- (a) Audio2Mouth alone degrades from the neutral-base to the cross-emotion setting: its M-LMD is higher
  there (Sec. IV-D: the emotion of the references conflicts with the speech's);
- (b) in cross-emotion, full CEM-Net beats "w/o AEE" and "w/o EBM" in M-LMD and in EA (Table IV's order),
  EA taken on the lower face by default (``ea_lower``: every method is given the true upper face, so the
  whole-face EA barely tells them apart).

``benchmarks/claims.py`` tests them over >= 3 training seeds; the demo prints them under its table for its own
single run, so the table says which claim holds at the demo's size (issue #14). A claim holds when the mean
over runs is on its side and so is a majority of the runs (:func:`verdict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cemnet_core.errors import ConfigError

A2M = "a2m (no emotion)"
Side = tuple[str, str, str]  # (setting, method, metric)


@dataclass(frozen=True)
class Claim:
    """``better`` beats ``worse`` (lower is better when ``lower_is_better``)."""

    name: str
    better: Side
    worse: Side
    lower_is_better: bool


def design_claims(ea: str = "ea_lower") -> list[Claim]:
    """The claims (a) and (b) of the module docstring; ``ea`` is the EA column of (b)."""
    cross = "cross-emotion"
    claims = [Claim("(a) A2M M-LMD cross-emotion > neutral-base", ("neutral-base", A2M, "m_lmd"),
                    (cross, A2M, "m_lmd"), True)]  # fmt: skip
    for metric, lower in (("m_lmd", True), (ea, False)):
        label = "M-LMD" if metric == "m_lmd" else f"EA {ea}"
        for other in ("w/o AEE", "w/o EBM"):
            name = f"(b) {label} cemnet {'<' if lower else '>'} {other} (cross-emotion)"
            claims.append(Claim(name, (cross, "cemnet", metric), (cross, other, metric), lower))
    return claims


def verdict(better: Sequence[float], worse: Sequence[float], lower_is_better: bool) -> tuple[str, int]:
    """Does ``better`` beat ``worse`` over seeds? -> ("holds" / "does not hold", seeds where it wins).

    The claim holds when the mean over seeds is better and it is better on a majority of the seeds
    (paired by seed): a mean carried by one seed is not enough. Ties are not wins.
    """
    a, b = np.asarray(better, np.float64), np.asarray(worse, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ConfigError(f"verdict needs one value per seed on each side; got {a.shape} and {b.shape}")
    wins = (a < b) if lower_is_better else (a > b)
    mean_wins = (a.mean() < b.mean()) if lower_is_better else (a.mean() > b.mean())
    holds = bool(mean_wins) and int(wins.sum()) * 2 > len(a)
    return ("holds" if holds else "does not hold"), int(wins.sum())


def per_seed(rows: Sequence[Mapping[str, Any]], side: Side) -> list[float]:
    """The mean over clips of ``side``'s metric for each seed, from :class:`~.protocol.EvalResult` rows."""
    setting, method, metric = side
    mine = [r for r in rows if r["setting"] == setting and r["method"] == method]
    values = [np.asarray([r[metric] for r in mine if r["seed"] == seed], np.float64)
              for seed in sorted({r["seed"] for r in mine})]  # fmt: skip
    return [float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan") for v in values]


def claim_lines(rows: Sequence[Mapping[str, Any]], ea: str = "ea_lower") -> list[str]:
    """One line per claim whose methods and settings ``rows`` hold: both sides' means and the verdict.

    A side without a finite score (e.g. EA on unlabelled clips) gives "n/a" rather than a verdict.
    """
    lines = []
    for claim in design_claims(ea):
        better, worse = per_seed(rows, claim.better), per_seed(rows, claim.worse)
        if not better or len(better) != len(worse):
            continue  # the evaluation ran without that method or setting
        if not np.all(np.isfinite(better + worse)):
            lines.append(f"{claim.name}: n/a (no score)")
            continue
        word, wins = verdict(better, worse, claim.lower_is_better)
        lines.append(f"{claim.name}: {np.mean(better):.3f} vs {np.mean(worse):.3f}, {word} "
                     f"({wins}/{len(better)} runs)")  # fmt: skip
    return lines
