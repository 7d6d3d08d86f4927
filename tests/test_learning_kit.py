"""The pure functions of the claims test (benchmarks/learning_kit.py): mean-displacement baselines, the linear
probe and the holds / does-not-hold verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import learning_kit as kit  # benchmarks/ is no package

from cemnet_core.errors import ConfigError


def test_mean_displacement_per_key_and_fallback() -> None:
    rng = np.random.default_rng(0)
    shift = {0: np.full((3, 2), 0.5), 1: np.full((3, 2), -1.0)}
    keys = [0, 0, 1, 1, 1]
    residuals = np.stack([np.broadcast_to(shift[k], (4, 3, 2)) for k in keys]) + 0.0
    residuals[0] += 0.1  # windows of a key average out: key 0 mean is 0.55
    residuals[1] -= 0.0
    table = kit.fit_mean_displacement(residuals, keys)
    np.testing.assert_allclose(table[0], 0.55)
    np.testing.assert_allclose(table[1], -1.0)
    np.testing.assert_allclose(table[None], residuals.mean(axis=(0, 1)))
    mouth = rng.normal(size=(3, 4, 3, 2))
    out = kit.apply_mean_displacement(mouth, [1, 0, 7], table)  # 7: never seen -> the overall mean
    np.testing.assert_allclose(out[0], mouth[0] - 1.0)
    np.testing.assert_allclose(out[1], mouth[1] + 0.55)
    np.testing.assert_allclose(out[2], mouth[2] + table[None])


def test_mean_displacement_with_pair_keys_recovers_the_true_shift() -> None:
    """Per-(target, source) keys: a table fitted on noisy windows brings Audio2Mouth back to the truth."""
    rng = np.random.default_rng(1)
    pairs = [(t, s) for t in range(3) for s in range(3) if t != s] * 20
    true_shift = {pair: rng.normal(size=(57, 2)) * 0.01 for pair in set(pairs)}
    a2m = rng.normal(size=(len(pairs), 5, 57, 2)) * 0.05
    truth = a2m + np.stack([true_shift[p] for p in pairs])[:, None] + rng.normal(size=a2m.shape) * 1e-3
    table = kit.fit_mean_displacement(truth - a2m, pairs)
    fixed = kit.apply_mean_displacement(a2m, pairs, table)
    assert np.abs(fixed - truth).mean() < 0.2 * np.abs(a2m - truth).mean()


def test_mean_displacement_refuses_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="one key per window"):
        kit.fit_mean_displacement(np.zeros((2, 5, 57, 2)), [0])
    with pytest.raises(ConfigError):
        kit.fit_mean_displacement(np.zeros((2, 57, 2)), [0, 1])


def test_linear_probe_finds_information_and_reports_chance() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=400)
    centres = rng.normal(size=(4, 8)) * 3
    features = centres[labels] + rng.normal(size=(400, 8))
    accuracy, chance = kit.linear_probe(features[:300], labels[:300], features[300:], labels[300:])
    assert accuracy > 0.9
    assert 0.1 < chance < 0.5
    noise = rng.normal(size=(400, 8))  # features that carry nothing about the labels
    accuracy, chance = kit.linear_probe(noise[:300], labels[:300], noise[300:], labels[300:])
    assert accuracy < chance + 0.15


def test_linear_probe_refuses_mismatched_inputs() -> None:
    with pytest.raises(ConfigError):
        kit.linear_probe(np.zeros((5, 3)), np.zeros(5), np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ConfigError):
        kit.linear_probe(np.zeros((5, 3)), np.zeros(4), np.zeros((2, 3)), np.zeros(2))


def test_verdict_needs_the_mean_and_a_majority_of_seeds() -> None:
    assert kit.verdict([1.0, 1.1, 0.9], [1.2, 1.3, 1.0], lower_is_better=True) == ("holds", 3)
    # better on average only because of one seed: does not hold
    assert kit.verdict([0.1, 1.3, 1.4], [1.2, 1.2, 1.2], lower_is_better=True) == ("does not hold", 1)
    # a majority of seeds but a worse mean: does not hold
    assert kit.verdict([1.0, 1.0, 3.0], [1.1, 1.1, 1.1], lower_is_better=True) == ("does not hold", 2)
    assert kit.verdict([0.6, 0.7], [0.5, 0.4], lower_is_better=False) == ("holds", 2)
    assert kit.verdict([0.5, 0.5], [0.5, 0.5], lower_is_better=False) == ("does not hold", 0)  # ties
    with pytest.raises(ConfigError):
        kit.verdict([1.0], [1.0, 2.0], lower_is_better=True)


def test_mean_std_over_seeds() -> None:
    assert kit.mean_std([1.0, 3.0]) == (2.0, 1.0)


def test_spread_targets_takes_every_emotion_and_turns_the_sentences() -> None:
    import claims_eval

    from cemnet_core.data.manifest import ClipRecord

    records = [
        ClipRecord(Path(f"/c/{e}_{s}.npz"), "mead", "M001", e, "3", str(s), 50)
        for e in ("angry", "happy", "sad")
        for s in range(3)
    ]
    chosen = claims_eval.spread_targets(records, per_emotion=1)
    assert [r.emotion for r in chosen] == ["angry", "happy", "sad"]
    assert [r.sentence for r in chosen] == ["0", "1", "2"]  # not always the first sentence
    assert len(claims_eval.spread_targets(records, per_emotion=5)) == 9  # capped by the clips there are
    rotated = claims_eval.spread_targets(records, per_emotion=1, start=2)
    assert [(r.emotion, r.sentence) for r in rotated] == [("sad", "2"), ("angry", "0"), ("happy", "1")]
