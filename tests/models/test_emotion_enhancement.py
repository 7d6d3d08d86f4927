"""Audio Emotion Enhancement (Sec. III-B): encoders, decoder, and the losses of Eqs. (5)-(7)."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError
from cemnet_core.models.emotion_enhancement import (
    EmotionEnhancer,
    EmotionEnhancerConfig,
    classification_loss,
    content_triplet_loss,
)

B = 3


@pytest.fixture
def model() -> EmotionEnhancer:
    return EmotionEnhancer(EmotionEnhancerConfig.tiny())


def _mel(model: EmotionEnhancer, batch: int = B) -> torch.Tensor:
    return model.example_inputs(batch)[0]


def _loss_inputs(model: EmotionEnhancer) -> tuple[torch.Tensor, ...]:
    clip_a, clip_b, negative = _mel(model), _mel(model), _mel(model)
    return clip_a, clip_b, negative, torch.tensor([0, 4, 7]), torch.tensor([5, 5, 1]), torch.tensor([0, 1, 2])


def test_embedding_and_decoder_shapes(model: EmotionEnhancer) -> None:
    c = model.config
    mel = _mel(model)
    emotion, timbre, content = model.emotion(mel), model.timbre(mel), model.content(mel)
    assert emotion.shape == (B, c.emotion_dim)
    assert timbre.shape == (B, c.timbre_dim)
    assert content.shape == (B, c.segment_frames // 4, c.content_dim)
    rebuilt = model.decode(timbre, emotion, content)
    assert rebuilt.shape == mel.shape
    assert model.classify_emotion(emotion).shape == (B, 8)
    assert model.classify_speaker(timbre).shape == (B, c.num_speakers)
    assert model.classify_content(content).shape == (B, c.segment_frames // 4, c.num_content_classes)
    for tensor in (emotion, timbre, content, rebuilt):
        assert torch.isfinite(tensor).all()
    torch.testing.assert_close(model(mel), emotion)


def test_gradients_reach_every_parameter(model: EmotionEnhancer) -> None:
    inputs = _loss_inputs(model)
    total, parts = model.aee_loss(*inputs)
    content_labels = torch.randint(0, model.config.num_content_classes, (B, model.config.segment_frames))
    pretraining = model.pretraining_losses(inputs[0], inputs[3], inputs[5], content_labels)
    assert set(parts) == {"reconstruction", "speaker", "emotion", "triplet"}
    assert set(pretraining) == {"emotion", "speaker", "content"}
    (total + sum(pretraining.values())).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_aee_loss_is_the_weighted_sum_of_its_terms() -> None:
    config = EmotionEnhancerConfig.from_dict(
        {**EmotionEnhancerConfig.tiny().to_dict(), "weight_reconstruction": 2.0, "weight_triplet": 0.5}
    )
    model = EmotionEnhancer(config).eval()
    total, parts = model.aee_loss(*_loss_inputs(model))
    expected = 2.0 * parts["reconstruction"] + parts["speaker"] + parts["emotion"] + 0.5 * parts["triplet"]
    torch.testing.assert_close(total, expected)


def test_cross_reconstruction_targets_the_emotion_source(model: EmotionEnhancer) -> None:
    model.eval()
    clip_a, clip_b = _mel(model), _mel(model)
    clips = (clip_a, clip_b)
    t = [model.timbre(x) for x in clips]
    e = [model.emotion(x) for x in clips]
    c = [model.content(x) for x in clips]
    by_hand = torch.stack(
        [
            F.mse_loss(model.decode(t[i], e[j], c[k]), clips[j])
            for i, j, k in itertools.product(range(2), repeat=3)
        ]
    ).mean()
    torch.testing.assert_close(model.cross_reconstruction_loss(clip_a, clip_b), by_hand)


def test_a_few_steps_lower_the_aee_loss(model: EmotionEnhancer) -> None:
    inputs = _loss_inputs(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        total, _ = model.aee_loss(*inputs)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    assert losses[-1] < 0.85 * losses[0]


def test_triplet_loss_reference_values() -> None:
    anchor = torch.zeros(2, 4, 3)
    positive = torch.zeros(2, 4, 3)
    positive[..., 0] = 1.0  # distance 1 at every step
    far = torch.zeros(2, 4, 3)
    far[..., 1] = 3.0  # distance 3
    near = torch.zeros(2, 4, 3)
    near[..., 2] = 1.5  # distance 1.5
    assert content_triplet_loss(anchor, positive, far, margin=1.0).item() == 0.0
    torch.testing.assert_close(content_triplet_loss(anchor, positive, near, margin=1.0), torch.tensor(0.5))
    vectors = content_triplet_loss(anchor[:, 0], positive[:, 0], near[:, 0], margin=1.0)  # (B, Dc) inputs
    torch.testing.assert_close(vectors, torch.tensor(0.5))


def test_classification_loss_matches_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    expected = 0.5 * (-torch.log_softmax(logits[0], 0)[0] - torch.log_softmax(logits[1], 0)[1])
    torch.testing.assert_close(classification_loss(logits, labels), expected)
    with pytest.raises(ValueError, match=r"\(B, classes\)"):
        classification_loss(logits, labels[:1])


def test_safetensors_round_trip_gives_identical_outputs(model: EmotionEnhancer, tmp_path: Path) -> None:
    mel = _mel(model)
    model.cross_reconstruction_loss(mel, mel.flip(0))  # fill batch-norm statistics
    model.eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = EmotionEnhancer(
        EmotionEnhancerConfig.from_dict(json.loads(json.dumps(model.config.to_dict())))
    )
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model.emotion(mel), restored.emotion(mel))
        rebuilt = model.decode(model.timbre(mel), model.emotion(mel), model.content(mel))
        assert torch.equal(
            rebuilt, restored.decode(restored.timbre(mel), restored.emotion(mel), restored.content(mel))
        )


def test_config_json_round_trip_and_errors() -> None:
    for config in (EmotionEnhancerConfig.paper(), EmotionEnhancerConfig.tiny()):
        assert EmotionEnhancerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="multiple of 4"):
        EmotionEnhancerConfig(segment_frames=30)
    with pytest.raises(ConfigError, match="unknown keys"):
        EmotionEnhancerConfig.from_dict({"layers": 3})
    no_content_head = EmotionEnhancer(EmotionEnhancerConfig(num_content_classes=0, channels=(2, 2, 2, 2)))
    with pytest.raises(ConfigError, match="num_content_classes"):
        no_content_head.classify_content(torch.zeros(1, 8, 256))


def test_paper_encoders_have_eight_convs_and_three_fcs() -> None:
    model = EmotionEnhancer(EmotionEnhancerConfig.paper())
    for encoder in (model.emotion_encoder, model.timbre_encoder, model.content_encoder):
        assert sum(isinstance(m, torch.nn.Conv2d) for m in encoder.modules()) == 8
        assert sum(isinstance(m, torch.nn.Linear) for m in encoder.modules()) == 3


def test_wrong_shapes_raise_value_error(model: EmotionEnhancer) -> None:
    mel = _mel(model)
    with pytest.raises(ValueError, match=r"\(B, 8, 80\)"):
        model.emotion(mel[:, :4])
    with pytest.raises(ValueError, match=r"emotion \(B, 8\)"):
        model.decode(model.timbre(mel), model.emotion(mel)[:, :3], model.content(mel))
    with pytest.raises(ValueError, match=r"content_labels must be \(B, S\)"):
        model.pretraining_losses(mel, torch.zeros(B, dtype=torch.long), torch.zeros(B, dtype=torch.long),
                                 torch.zeros(B, 3, dtype=torch.long))  # fmt: skip


# ----------------------------------------------------------------- Fig. 4 cross-reconstruction (Eq. 5)

# (i, j, k): timbre of a_i, emotion of a_j, content of a_k
COMBOS = list(itertools.product(range(2), repeat=3))
Mels = Callable[[int, int, int], torch.Tensor]
Trained = tuple[EmotionEnhancer, Mels]


def _factor_mels(config: EmotionEnhancerConfig) -> Mels:
    """A toy corpus of 3 speakers x 3 emotions x 3 sentences: ``mel(t, e, c)`` (S, F) = timbre profile of
    speaker ``t`` + emotion profile ``e`` (over frequency) + sentence ``c``'s content (over time)."""
    generator = torch.Generator().manual_seed(0)
    timbre = torch.randn(3, 1, 80, generator=generator)
    emotion = torch.randn(3, 1, 80, generator=generator)
    content = 1.5 * torch.randn(3, config.segment_frames, 80, generator=generator)
    return lambda t, e, c: timbre[t] + emotion[e] + content[c]


def _cross_batch(mel: Mels, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Fig. 4 inputs: a_0, a_1 of two speakers, emotions and sentences, the 8 targets and the labels."""
    speakers, emotions, sentences = (
        torch.stack([torch.randperm(3, generator=generator)[:2] for _ in range(batch)]) for _ in range(3)
    )  # (B, 2) each
    targets = torch.stack(
        [
            torch.stack([mel(speakers[b, i], emotions[b, j], sentences[b, k]) for i, j, k in COMBOS])
            for b in range(batch)
        ]
    ).unflatten(1, (2, 2, 2))  # (B, 2, 2, 2, S, F)
    return (targets[:, 0, 0, 0], targets[:, 1, 1, 1], targets, emotions[:, 0], emotions[:, 1],
            speakers[:, 0], speakers[:, 1])  # fmt: skip


@pytest.fixture(scope="module")
def trained() -> Trained:
    """The tiny model after 60 steps of Eq. (7) on Fig. 4 items of the toy corpus (a few seconds)."""
    torch.manual_seed(0)
    model = EmotionEnhancer(EmotionEnhancerConfig.tiny())
    mel = _factor_mels(model.config)
    generator = torch.Generator().manual_seed(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        total, _ = model.cross_aee_loss(*_cross_batch(mel, 4, generator))
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    return model.eval(), mel


def _changes(model: EmotionEnhancer, mel: Mels) -> list[float]:
    """Relative change of ``reconstruct(timbre, emotion, content)`` when each source alone is replaced."""
    sources = [mel(0, 0, 0)[None], mel(1, 1, 1)[None], mel(2, 2, 2)[None]]  # (1, S, F) each
    others = [mel(1, 2, 0)[None], mel(2, 0, 1)[None], mel(0, 1, 0)[None]]  # another speaker / emotion / text
    with torch.no_grad():
        base = model.reconstruct(*sources)
        changes = []
        for which in range(3):
            swapped = [others[w] if w == which else sources[w] for w in range(3)]
            changes.append(float((model.reconstruct(*swapped) - base).norm() / base.norm()))
    return changes


def test_cross_aee_loss_matches_eq5_by_hand(model: EmotionEnhancer) -> None:
    model.eval()
    inputs = _cross_batch(_factor_mels(model.config), B, torch.Generator().manual_seed(2))
    clip_a, clip_b, targets = inputs[:3]
    clips = (clip_a, clip_b)
    t, e, c = ([encode(x) for x in clips] for encode in (model.timbre, model.emotion, model.content))
    by_hand = torch.stack(
        [F.mse_loss(model.decode(t[i], e[j], c[k]), targets[:, i, j, k]) for i, j, k in COMBOS]
    )
    total, parts = model.cross_aee_loss(*inputs)
    torch.testing.assert_close(parts["reconstruction"], by_hand.mean())
    positive_a, positive_b = model.content(targets[:, 1, 1, 0]), model.content(targets[:, 0, 0, 1])
    triplet = 0.5 * (
        content_triplet_loss(c[0], positive_a, positive_b)
        + content_triplet_loss(c[1], positive_b, positive_a)
    )
    torch.testing.assert_close(parts["triplet"], triplet)
    torch.testing.assert_close(total, sum(parts.values()))
    with pytest.raises(ValueError, match=r"\(B, 2, 2, 2, S, F\)"):
        model.cross_aee_loss(clip_a, clip_b, targets[:, 0], *inputs[3:])


def test_cross_aee_loss_reaches_every_parameter(model: EmotionEnhancer) -> None:
    inputs = _cross_batch(_factor_mels(model.config), B, torch.Generator().manual_seed(3))
    total, _ = model.cross_aee_loss(*inputs)
    total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [
        name for name, _ in model.content_classifier.named_parameters(prefix="content_classifier")
    ]


def test_decoder_output_changes_with_each_of_the_three_inputs(trained: Trained) -> None:
    """Fig. 4: replacing the timbre, the emotion or the content source alone changes the rebuilt mel."""
    model, mel = trained
    changes = _changes(model, mel)
    assert min(changes) > 0.02, changes


@pytest.mark.parametrize("ignored", [0, 1, 2])
def test_the_change_test_fails_a_decoder_that_ignores_an_input(trained: Trained, ignored: int) -> None:
    """The check above can fail: with the decoder's weights on one input zeroed, it changes nothing."""
    model, mel = trained
    c = model.config
    widths = (
        c.timbre_dim,
        c.emotion_dim,
        c.content_dim,
    )  # the decoder's input order: timbre, emotion, content
    first = sum(widths[:ignored])
    deaf = copy.deepcopy(model)
    with torch.no_grad():
        deaf.decoder.fc1.weight[:, first : first + widths[ignored]] = 0.0
    changes = _changes(deaf, mel)
    assert changes[ignored] < 1e-6
    assert all(change > 0.02 for which, change in enumerate(changes) if which != ignored), changes
