"""Training throughput of Audio2Mouth and the renderer at the paper's sizes: steps/s, TFLOP/s and MFU.

One full optimisation step is timed (forward, the paper's losses, backward, optimiser step; for the
renderer also the discriminator step), first in fp32 then in the training precision (bf16 autocast on GPUs
that have it) in the same process, so the ratio is the speed-up of mixed precision on this machine. FLOPs
are counted once per step with ``torch.utils.flop_counter.FlopCounterMode`` (matmul/conv FLOPs of forward +
backward); MFU divides achieved FLOP/s by the dense bf16 peak (table below; CPU: no peak, no MFU).

    .venv/bin/python benchmarks/train_throughput.py                 # CPU here: tiny batch, few steps
    python benchmarks/train_throughput.py --batch-a2m 256 --batch-renderer 32 --steps 30   # on a GPU
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig, audio2mouth_loss
from cemnet_core.models.discriminator import (
    PatchDiscriminator,
    PatchDiscriminatorConfig,
    discriminator_loss,
)
from cemnet_core.models.perceptual import VGG19Features
from cemnet_core.models.renderer import FaceRenderer, RendererConfig, mask_lower_half
from cemnet_core.models.renderer_loss import generator_loss
from cemnet_core.train.precision import Precision, resolve_precision

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0, "A100": 312.0}


def peak_tflops(device: torch.device) -> float | None:
    """The dense bf16 peak of ``device`` if it is a GPU we know, else ``None``."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name:
        if "PCIe" in name:
            return PEAK_BF16_TFLOPS["H100 PCIe"]
        if "NVL" in name:
            return PEAK_BF16_TFLOPS["H100 NVL"]
        return PEAK_BF16_TFLOPS["H100 SXM"]
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def a2m_step_fn(batch: int, device: torch.device, precision: Precision) -> Callable[[], None]:
    """One Audio2Mouth step (Eqs. 2-4, Adam 1e-4) on random inputs of the paper's shapes."""
    model = AudioToMouth(AudioToMouthConfig.paper()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    inputs = [tensor.to(device) for tensor in model.example_inputs(batch)]
    target = torch.rand(batch, model.config.num_frames, 57, 2, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            prediction = model(*inputs)
        loss, _ = audio2mouth_loss(prediction.float(), target)
        loss.backward()
        optimizer.step()

    return step


def renderer_step_fn(batch: int, device: torch.device, precision: Precision) -> Callable[[], None]:
    """One renderer step: generator with Eq. (17) losses, then the discriminator (both Adam)."""
    config = RendererConfig.paper()
    renderer = FaceRenderer(config).to(device)
    discriminator = PatchDiscriminator(PatchDiscriminatorConfig.paper()).to(device)
    vgg = VGG19Features().to(device)  # random weights: same FLOPs as ImageNet ones
    opt_g = torch.optim.Adam(renderer.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    inputs = [tensor.to(device) for tensor in renderer.example_inputs(batch)]
    target = torch.rand(batch, 3, config.image_size, config.image_size, device=device)
    inputs[3] = mask_lower_half(target)

    def step() -> None:
        opt_g.zero_grad(set_to_none=True)
        with precision.autocast():
            output = renderer(*inputs)
            loss, _ = generator_loss(config, output, target, vgg, discriminator)
        loss.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        with precision.autocast():
            d_loss = discriminator_loss(discriminator(target), discriminator(output.image.detach()))
        d_loss.backward()
        opt_d.step()

    return step


def measure(step: Callable[[], None], device: torch.device, steps: int, warmup: int) -> tuple[float, float]:
    """Return (steps per second, FLOPs per step)."""
    for _ in range(warmup):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = float(counter.get_total_flops())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start), flops


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-a2m", type=int, default=None, help="default: 128 on GPU, 8 on CPU")
    parser.add_argument("--batch-renderer", type=int, default=None, help="default: 32 on GPU, 2 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 GPU, 3 CPU)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    steps = args.steps or (30 if on_gpu else 3)
    batches = {
        "a2m": args.batch_a2m or (128 if on_gpu else 8),
        "renderer": args.batch_renderer or (32 if on_gpu else 2),
    }
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 baseline is true fp32
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        print(f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}")
    peak = peak_tflops(device)
    training = resolve_precision("auto", device)
    precisions = [Precision("fp32", device)] + ([training] if training.name != "fp32" else [])
    builders = {"a2m": a2m_step_fn, "renderer": renderer_step_fn}
    print(
        f"{'model':10} {'precision':9} {'batch':>5} {'steps/s':>9} {'samples/s':>10} {'GFLOP/step':>11} "
        f"{'TFLOP/s':>8} {'MFU':>6} {'vs fp32':>8}"
    )
    for name, build in builders.items():
        baseline = None
        for precision in precisions:
            torch.manual_seed(0)
            step = build(batches[name], device, precision)
            rate, flops = measure(step, device, steps, args.warmup)
            achieved = rate * flops / 1e12
            baseline = baseline or rate
            mfu = f"{100 * achieved / peak:5.1f}%" if peak else "   n/a"
            print(
                f"{name:10} {precision.name:9} {batches[name]:5d} {rate:9.2f} {rate * batches[name]:10.1f} "
                f"{flops / 1e9:11.1f} {achieved:8.2f} {mfu:>6} {rate / baseline:7.2f}x"
            )
            del step
            if on_gpu:
                torch.cuda.empty_cache()
    if peak:
        print(f"MFU relative to a dense bf16 peak of {peak:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
