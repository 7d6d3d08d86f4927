"""Face renderer (Sec. III-D, Eqs. 14-17): shapes, warping, fusion weights, gradients, persistence, losses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError
from cemnet_core.models import build_model
from cemnet_core.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from cemnet_core.models.landmark_warp import mouth_similarity_logits
from cemnet_core.models.perceptual import VGG19Features
from cemnet_core.models.renderer import FaceRenderer, RendererConfig, mask_lower_half, warp
from cemnet_core.models.renderer_loss import generator_loss

# The paper's design at the tiny sizes: no landmark prior, no composite, no pixel term.
PAPER_TINY = dataclasses.replace(RendererConfig.tiny(), motion_prior=False, composite=False, pixel_weight=0.0)


@pytest.fixture(params=["prior", "paper"])
def model(request: pytest.FixtureRequest) -> FaceRenderer:
    torch.manual_seed(0)
    return FaceRenderer(RendererConfig.tiny() if request.param == "prior" else PAPER_TINY)


def _perturb_zero_heads(model: FaceRenderer) -> None:
    """Give the heads that start at zero (prior / composite) small random weights."""
    with torch.no_grad():
        for head in (model.flow_estimator.flow_head, model.flow_estimator.weight_head, model.to_rgb):
            head.weight.normal_(std=0.05)
            head.bias.normal_(std=0.05)


def test_forward_shapes_finite_and_ranges(model: FaceRenderer) -> None:
    inputs = model.example_inputs(batch_size=3)
    output = model(*inputs)
    size, N = model.config.image_size, model.config.num_refs
    assert output.image.shape == (3, 3, size, size)
    assert output.warped.shape == (3, 3, size, size)
    assert output.flows.shape == (3, N, 2, size, size)
    assert output.weights.shape == (3, N, 1, size, size)
    for tensor in output:
        assert torch.isfinite(tensor).all()
    assert output.image.min() >= 0 and output.image.max() <= 1
    torch.testing.assert_close(output.weights.sum(dim=1), torch.ones(3, 1, size, size))


def test_zero_motion_field_returns_the_input_exactly() -> None:
    images = torch.rand(2, 3, 16, 24)
    # exact up to float32 rounding of the sampling grid (a few ulps)
    torch.testing.assert_close(warp(images, torch.zeros(2, 2, 16, 24)), images, rtol=0, atol=1e-5)


def test_flow_moves_content_by_the_expected_number_of_pixels() -> None:
    images = torch.zeros(1, 1, 8, 8)
    images[0, 0, 3, 3] = 1.0
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0 / 8  # sample one pixel to the right: content moves one pixel left
    moved = warp(images, flow)
    assert moved[0, 0, 3, 2] == pytest.approx(1.0, abs=1e-6)
    assert moved[0, 0, 3, 3] == pytest.approx(0.0, abs=1e-6)


def test_untrained_renderer_warps_by_identity_and_fuses_the_references() -> None:
    model = FaceRenderer(PAPER_TINY)
    ref_images, ref_sketches, target_sketch, masked = model.example_inputs(batch_size=2)
    same = ref_images[:, :1].expand_as(ref_images).contiguous()  # every reference the same image
    output = model(same, ref_sketches, target_sketch, masked)
    assert torch.equal(output.flows, torch.zeros_like(output.flows))
    torch.testing.assert_close(output.warped, same[:, 0], rtol=0, atol=1e-5)


def test_mask_lower_half_zeroes_exactly_the_lower_rows() -> None:
    images = torch.rand(2, 5, 3, 8, 8) + 0.1
    masked = mask_lower_half(images)
    assert torch.equal(masked[..., 4:, :], torch.zeros_like(masked[..., 4:, :]))
    assert torch.equal(masked[..., :4, :], images[..., :4, :])
    assert images.min() > 0  # the input is left untouched


def _affine_flow(matrix: torch.Tensor, offset: torch.Tensor, size: int) -> torch.Tensor:
    """Flow (2, size, size) sampling source p = matrix @ q + offset at target q (crop units [0, 1])."""
    centres = (torch.arange(size) + 0.5) / size
    q = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)  # (H, W, 2)
    return ((q @ matrix.T + offset) * 2 - 1 - (q * 2 - 1)).permute(2, 0, 1)


def test_untrained_renderer_returns_the_landmark_warp_prior() -> None:
    """Each reference's landmarks are an affine map of the target's, so the exact warp is known."""
    model = FaceRenderer(RendererConfig.tiny())
    ref_images, ref_sketches, target_sketch, masked, _, _ = model.example_inputs(batch_size=2)
    B, N, _, H, W = ref_images.shape
    generator = torch.Generator().manual_seed(0)
    target_landmarks = 0.3 + 0.4 * torch.rand(B, 135, 2, generator=generator)
    matrices = torch.eye(2) + 0.08 * torch.randn(B, N, 2, 2, generator=generator)
    offsets = 0.05 * torch.randn(B, N, 2, generator=generator)
    ref_landmarks = torch.einsum("bnij,bkj->bnki", matrices, target_landmarks) + offsets[:, :, None]
    output = model(ref_images, ref_sketches, target_sketch, masked, ref_landmarks, target_landmarks)
    flows = torch.stack([_affine_flow(matrices[b, n], offsets[b, n], H) for b in range(B) for n in range(N)])
    lips = slice(78, 118)  # LIPS inside the ALL order
    weights = torch.softmax(mouth_similarity_logits(ref_landmarks[:, :, lips], target_landmarks[:, lips]), 1)
    each = warp(ref_images.flatten(0, 1), flows).view(B, N, 3, H, W)
    warped = (each * weights[..., None, None, None]).sum(1).clamp(0, 1)
    inner = (slice(H // 2, H - 2), slice(2, W - 2))  # the lower half, away from the upsampling's border
    torch.testing.assert_close(output.image[..., inner[0], inner[1]], warped[..., inner[0], inner[1]],
                               rtol=0, atol=2e-3)  # fmt: skip
    torch.testing.assert_close(output.weights[:, :, 0, 0, 0], weights)
    assert torch.equal(output.image[..., : H // 2, :], masked[..., : H // 2, :])


def test_composite_leaves_the_unmasked_region_bit_identical() -> None:
    model = FaceRenderer(RendererConfig.tiny())
    _perturb_zero_heads(model)
    inputs = model.example_inputs(batch_size=2)
    image = model(*inputs).image
    H = image.shape[-2]
    assert torch.equal(image[..., : H // 2, :], inputs[3][..., : H // 2, :])
    assert not torch.equal(image[..., H // 2 :, :], model(*inputs).warped[..., H // 2 :, :].clamp(0, 1))


def test_prior_needs_the_landmarks() -> None:
    model = FaceRenderer(RendererConfig.tiny())
    ref_images, ref_sketches, target_sketch, masked, ref_landmarks, _ = model.example_inputs(batch_size=1)
    with pytest.raises(ValueError, match="ref_landmarks"):
        model(ref_images, ref_sketches, target_sketch, masked)
    with pytest.raises(ValueError, match="target_landmarks"):
        model(ref_images, ref_sketches, target_sketch, masked, ref_landmarks)


def test_wrong_shapes_raise_value_error(model: FaceRenderer) -> None:
    ref_images, ref_sketches, target_sketch, masked = model.example_inputs(batch_size=1)[:4]
    with pytest.raises(ValueError, match="ref_images"):
        model(ref_images[:, :, :, :-1], ref_sketches, target_sketch, masked)
    with pytest.raises(ValueError, match="masked_target"):
        model(ref_images, ref_sketches, target_sketch, masked[..., :-2])
    with pytest.raises(ValueError, match="flow"):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_gradients_reach_every_parameter(model: FaceRenderer) -> None:
    _perturb_zero_heads(model)  # zero-initialised heads pass no gradient on at step 0 (by design)
    inputs = model.example_inputs(batch_size=2)
    target = torch.rand(2, 3, model.config.image_size, model.config.image_size)
    discriminator = PatchDiscriminator(PatchDiscriminatorConfig.tiny())
    total, terms = generator_loss(model.config, model(*inputs), target, VGG19Features(), discriminator)
    total.backward()
    assert set(terms) == {"perceptual", "warp", "gan", "feature_matching", "pixel"}
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_training_steps_lower_the_reconstruction_loss(model: FaceRenderer) -> None:
    inputs = list(model.example_inputs(batch_size=2))
    target = inputs[0][:, 0]
    inputs[3] = mask_lower_half(target)  # the target's own upper face, as in training
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.l1_loss(model(*inputs).image, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_safetensors_round_trip_gives_identical_outputs(model: FaceRenderer, tmp_path: Path) -> None:
    inputs = model.example_inputs(batch_size=2)
    _perturb_zero_heads(model)  # a non-trivial motion field and residual
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = build_model("renderer", json.loads(json.dumps(model.config.to_dict())))
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    with torch.no_grad():
        for before, after in zip(model(*inputs), restored(*inputs), strict=True):
            assert torch.equal(before, after)


def test_config_json_round_trip_and_paper_values() -> None:
    for config in (
        RendererConfig.paper(),
        RendererConfig.base(),
        RendererConfig.small(),
        RendererConfig.tiny(),
    ):
        assert RendererConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    paper = RendererConfig.paper()
    assert (paper.image_size, paper.num_refs) == (128, 5)
    assert (paper.perceptual_weight, paper.gan_weight, paper.feature_matching_weight) == (4.0, 0.25, 1.0)
    assert (paper.motion_prior, paper.composite, paper.pixel_weight) == (False, False, 0.0)
    base = RendererConfig.base()
    assert (base.motion_prior, base.composite) == (True, True) and base.pixel_weight > 0
    assert dataclasses.replace(base, motion_prior=False, composite=False, pixel_weight=0.0) == paper
    with pytest.raises(ConfigError, match="unknown"):
        RendererConfig.from_dict({"image_size": 128, "colour": 1})
    old = {k: v for k, v in base.to_dict().items() if k not in ("motion_prior", "composite", "pixel_weight")}
    assert RendererConfig.from_dict(old) == paper  # a release from before the deviations is the paper's
    with pytest.raises(ConfigError, match="divisible"):
        RendererConfig(image_size=100)


def test_reduced_scale_flow_is_upsampled_to_full_resolution() -> None:
    config = dataclasses.replace(PAPER_TINY, flow_scale=0.5)
    model = FaceRenderer(config)
    ref_images, ref_sketches, target_sketch, masked = model.example_inputs(batch_size=2)
    same = ref_images[:, :1].expand_as(ref_images).contiguous()
    output = model(same, ref_sketches, target_sketch, masked)
    assert output.flows.shape == (2, 2, 2, 32, 32) and output.weights.shape == (2, 2, 1, 32, 32)
    torch.testing.assert_close(output.warped, same[:, 0], rtol=0, atol=1e-5)  # zero flow head: identity
    output.image.mean().backward()
    assert all(p.grad is not None for p in model.flow_estimator.body.parameters())
    with pytest.raises(ConfigError, match="flow_scale"):
        RendererConfig(image_size=32, flow_channels=(8, 16), flow_scale=0.3)


@pytest.mark.parametrize("repeats", [[0, 0, 0, 0, 0], [0, 1, 1, 0, 1, 1]])
def test_counted_references_render_the_frame_of_the_repeated_ones(model: FaceRenderer, repeats: list) -> None:
    _perturb_zero_heads(model)  # the fusion weights then differ between references
    ref_images, ref_sketches, target, masked, *landmarks = model.example_inputs(batch_size=2)
    distinct = sorted(set(repeats))
    counts = torch.tensor([float(repeats.count(i)) for i in distinct])

    def refs(index: list) -> list:
        extra = [landmarks[0][:, index], landmarks[1]] if landmarks else [None, None]
        return [ref_images[:, index], ref_sketches[:, index], target, masked, *extra]

    with torch.no_grad():
        repeated = model(*refs(repeats)).image
        counted = model(*refs(distinct), counts).image
        uncounted = model(*refs(distinct)).image
    torch.testing.assert_close(counted, repeated, rtol=0, atol=5e-4)  # float rounding: < 0.13 levels
    if len(distinct) > 1:  # without the counts the references weigh alike: another frame
        assert (uncounted - repeated).abs().max() > 1e-3
    with pytest.raises(ValueError, match="ref_counts"):
        model(*refs(distinct), torch.zeros(len(distinct)))
