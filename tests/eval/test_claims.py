"""The claims of DESIGN section 9 and their verdict (cemnet_core.eval.claims)."""

from __future__ import annotations

import math

from cemnet_core.eval.claims import A2M, claim_lines, design_claims, per_seed, verdict


def _rows(scores: dict[tuple[str, str], list[float]], metric: str = "m_lmd") -> list[dict]:
    """Protocol rows: two clips per seed, whose mean is the given per-seed score."""
    rows = []
    for (setting, method), per_run in scores.items():
        for seed, value in enumerate(per_run):
            for offset in (-0.1, 0.1):
                rows.append({"setting": setting, "method": method, "seed": seed, metric: value + offset,
                             "ea_lower": 0.5})  # fmt: skip
    return rows


def test_per_seed_is_the_mean_over_each_seeds_clips() -> None:
    rows = _rows({("cross-emotion", "cemnet"): [1.0, 2.0]})
    assert per_seed(rows, ("cross-emotion", "cemnet", "m_lmd")) == [1.0, 2.0]
    assert per_seed(rows, ("cross-emotion", "w/o EBM", "m_lmd")) == []


def test_claim_lines_give_each_claim_its_verdict_and_skip_missing_methods() -> None:
    rows = _rows({
        ("neutral-base", A2M): [1.0, 1.1, 0.9],
        ("cross-emotion", A2M): [1.5, 1.6, 1.4],  # (a) holds: A2M degrades
        ("cross-emotion", "cemnet"): [1.2, 1.3, 1.1],
        ("cross-emotion", "w/o EBM"): [1.0, 1.4, 1.0],  # cemnet wins one seed of three: does not hold
    })  # fmt: skip
    lines = claim_lines(rows)
    assert lines[0].startswith("(a) A2M M-LMD") and lines[0].endswith("holds (3/3 runs)")
    by_name = {line.split(":")[0]: line for line in lines}
    assert by_name["(b) M-LMD cemnet < w/o EBM (cross-emotion)"].endswith("does not hold (1/3 runs)")
    assert by_name["(b) EA ea_lower cemnet > w/o EBM (cross-emotion)"].endswith(
        "does not hold (0/3 runs)"
    )  # tie
    assert not any("w/o AEE" in line for line in lines)  # not evaluated: no line rather than a verdict
    assert len(design_claims()) == 5


def test_a_side_without_scores_is_not_a_verdict() -> None:
    rows = _rows({("neutral-base", A2M): [1.0], ("cross-emotion", A2M): [math.nan]})
    assert claim_lines(rows) == ["(a) A2M M-LMD cross-emotion > neutral-base: n/a (no score)"]
    assert verdict([1.0], [2.0], lower_is_better=True) == ("holds", 1)
