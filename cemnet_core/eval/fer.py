"""The FER2013 emotion judges on real faces (Table II's EA, Sec. IV-D): the crop FER2013 was trained on,
and a lower-face variant that scores only the region a method generates.

FER2013 images are tight 48x48 grey faces (about brows to chin, ears and hair cut off). The pipeline's
aligned crop (:func:`cemnet_core.data.faces.crop_boxes`) is a square around ``landmarks.ALL`` widened by
``FaceConfig.margin`` = 0.15 of its side on every side, so it shows background, hair and neck too.
:func:`fer_face_crop` cuts the fixed central square ``[FER_INSET, 1 - FER_INSET]`` of it (a fixed crop
needs no landmarks, so generated frames, which share the ground truth's crop geometry, get exactly the
same crop as the true frames). ``FER_INSET`` = 0.14 sits a little inside the landmark box itself
(``0.15 / 1.3`` = 0.115 of the side, forehead top to chin). Measured by ``benchmarks/fer_mead.py`` on the
16 labelled real MEAD clips (majority vote over every fifth frame; clips right of 16): the whole crop 8,
insets 0.10: 9, 0.115: 10, 0.125: 11, 0.14: 11, 0.16: 10, 0.18: 8, 0.22: 8; a tight square around each
frame's own face oval and brows (478-point mesh) 10. The inset was chosen on those same 16 clips (no other
labelled real clips exist here), so 11/16 = 0.69 is an optimistic estimate of the judge on new clips.

:class:`FERLowerFaceJudge` (EA on the lower face, ``ea_lower``): every method is given the true upper
face, so whole-face EA cannot tell methods apart. This judge pastes the lower half of each frame (rows
``S // 2 ..``, the half the renderer generates, ``models.renderer.mask_lower_half``) under the upper half
of the method's references (frame ``t`` takes reference ``t mod N``) and runs :class:`FERJudge` on that.
In the ``neutral-base`` setting the references are neutral frames of the speaker, so the upper face says
"neutral" and only the mouth can carry the target emotion; in ``cross-emotion`` they show the reference
emotion, the same for every method of a pair. Its accuracy on true lower faces under a neutral upper face
of the same speaker is measured by the same benchmark (6/16 clips: the lower face alone carries less
emotion than the whole face, and FER2013's classifier reads most such mouths as happy or surprised).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from cemnet_core.contracts import FER_CLASSES
from cemnet_core.data.images import to_images
from cemnet_core.eval.metrics import fer_index
from cemnet_core.models.image_emotion import to_fer_input
from cemnet_core.pretrained import load_fer_classifier

FER_INSET = 0.14  # fraction of the aligned crop's side cut off on every side (module docstring)
CROPS = ("whole", "central")


def fer_face_crop(frames: np.ndarray, inset: float = FER_INSET) -> np.ndarray:
    """(T, S, S, 3) aligned crops -> (T, S', S', 3): their central square ``[inset, 1 - inset]``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got {frames.shape}")
    if not 0.0 <= inset < 0.5:
        raise ValueError(f"inset must be in [0, 0.5), got {inset}")
    height, width = frames.shape[1:3]
    top, left = round(inset * height), round(inset * width)
    return frames[:, top : height - top, left : width - left]


def lower_face_composite(frames: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Lower halves of ``frames`` (T, S, S, 3) under the upper halves of ``upper`` (N, S, S, 3): frame ``t``
    takes ``upper[t mod N]``'s rows ``0 .. S // 2`` -> (T, S, S, 3) uint8."""
    frames, upper = np.asarray(frames), np.asarray(upper)
    if upper.ndim != 4 or len(upper) == 0 or upper.shape[1:] != frames.shape[1:]:
        raise ValueError(f"upper faces must be (N, H, W, 3) like frames {frames.shape}, got {upper.shape}")
    half = frames.shape[1] // 2
    composite = frames.copy()
    composite[:, :half] = upper[np.arange(len(frames)) % len(upper), :half]
    return composite


class FERJudge:
    """EA judge on real faces: the frozen, untouched FER2013 mini-Xception (7 classes) on the crop FER2013
    was trained for (``crop="central"``, :func:`fer_face_crop`; ``"whole"`` = the whole aligned crop, the
    judge before issue 14, kept as the baseline of ``benchmarks/fer_mead.py``)."""

    classes = FER_CLASSES

    def __init__(
        self, source: str | os.PathLike[str] | None = None, batch_size: int = 64, crop: str = "central",
        inset: float = FER_INSET,
    ) -> None:  # fmt: skip
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        self.model = load_fer_classifier(source)
        self.batch_size = batch_size
        self.crop, self.inset = crop, inset
        suffix = f", central crop inset {inset}" if crop == "central" else ", whole crop"
        self.name = f"fer2013.mini_xception{suffix} (clip accuracy on real MEAD: benchmarks/fer_mead.py)"

    def target_index(self, mead_emotion: str) -> int:
        """FER class of a MEAD emotion (contempt -> disgust, see ``contracts.MEAD_TO_FER``)."""
        return fer_index(mead_emotion)

    @torch.no_grad()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 aligned face crops -> (T, 7) FER logits (grey, 64x64, as trained)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3) RGB, got {frames.shape}")
        if self.crop == "central":
            frames = fer_face_crop(frames, self.inset)
        images = to_images(np.ascontiguousarray(frames))  # (T, 3, S', S') in [0, 1]
        size = self.model.config.input_size
        outputs = [
            self.model(to_fer_input(images[i : i + self.batch_size], size))
            for i in range(0, len(images), self.batch_size)
        ]
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, len(FER_CLASSES)), np.float32)


class FERLowerFaceJudge:
    """EA on the lower face for real faces (``ea_lower``): :class:`FERJudge` on the frames' lower halves
    under the references' upper halves (module docstring)."""

    classes = FER_CLASSES

    def __init__(self, judge: FERJudge | None = None) -> None:
        self.judge = judge or FERJudge()
        self.name = f"{self.judge.name}, lower half under the references' upper half"

    def target_index(self, mead_emotion: str) -> int:
        """FER class of a MEAD emotion (as :class:`FERJudge`)."""
        return self.judge.target_index(mead_emotion)

    def lower_logits(self, frames: np.ndarray, references: np.ndarray) -> np.ndarray:
        """frames (T, S, S, 3), references (N, S, S, 3) uint8 -> (T, 7) logits of the composites."""
        return self.judge.logits(lower_face_composite(frames, references))
