"""The contracts every part of CEM-Net shares, each defined once (DESIGN sections 2-4; paper Sec. III, IV).

A foundation module: it imports nothing from ``cemnet_core``, so data/, models/, train/, eval/ and the
top-level modules can all take their constants from here without importing each other.

- media: 25 fps video, 16 kHz mono audio (Sec. IV-C: "the sample rate for audio is set to 16kHz");
- the mel front end's shape: ``MEL_BINS`` (80) bins, ``MEL_PER_FRAME`` (3.2) mel frames per video frame,
  ``MEL_WINDOW`` (16) mel frames (0.2 s) seen by one video frame (Sec. III-A); the front end itself is
  :mod:`cemnet_core.data.audio`;
- emotions: MEAD's 8 labels in the order every label index uses (Sec. IV-A), FER2013's 7 classes as the
  FER classifier outputs them, and the MEAD -> FER map the EA metric and the FER fine-tuning share;
- landmarks: the MediaPipe index groups (``LIPS``, ``JAW``, ``POSE``, ``MOUTH``, ``ALL``) and the positions of
  the groups inside an ``ALL``-ordered array (``ALL_POSE``, ``ALL_MOUTH``, ``ALL_LIPS``, ``ALL_JAW``); the
  functions on landmarks are in :mod:`cemnet_core.data.landmarks`;
- ``IDENTITY_DIM``: the width of the identity embedding the EBM is conditioned on (dlib, 128);
- SyncNet's input windows (syncnet_python's ``SyncNetInstance.evaluate``, the LipSync metric of Sec. IV-D):
  5 video frames against 20 MFCC frames, 4 MFCC frames per video frame, offsets searched up to 15 frames.

Landmark groups
---------------
MediaPipe Face Landmarker gives 478 points per face (468 mesh points + 10 iris points). CEM-Net works on a
subset:

- ``LIPS`` (40): the outer and inner lip contours.
- ``JAW`` (17): the lower half of the face oval, ear level to ear level through the chin (152).
- ``POSE``: the rigid and upper-face points (eyes, brows, nose bridge and tip, upper face oval). They carry
  head pose and are copied from the references (or a pose video) at generation time.
- ``MOUTH = LIPS + JAW`` (57): what Audio2Mouth (Sec. III-A) and the EBM (Sec. III-C) predict.
- ``ALL = POSE + LIPS + JAW``: the landmarks the renderer (Sec. III-D) sees as sketches.
"""

from __future__ import annotations

# -- media ----------------------------------------------------------------------------------------------
VIDEO_FPS = 25.0  # every clip is decoded, processed and written at 25 fps
SAMPLE_RATE = 16000  # mono audio, Hz

# -- mel front end (DESIGN section 2) --------------------------------------------------------------------
MEL_BINS = 80
MEL_PER_FRAME = 3.2  # 80 mel frames/s over 25 video frames/s
MEL_WINDOW = 16  # mel frames a video frame sees (0.2 s)

# -- emotion labels -----------------------------------------------------------------------------------------
# MEAD's 8 emotions; a label index everywhere (datasets, models' classifiers, --emotion) is into this order.
EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
NUM_EMOTIONS = len(EMOTIONS)
# FER2013's 7 classes in the order of the FER classifier's logits.
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# MEAD's 8 emotions -> FER2013's 7 classes. FER2013 has no "contempt": it is scored as "disgust", the
# nearest FER class (both raise the upper lip / a mouth corner; contempt is often labelled disgust).
MEAD_TO_FER: dict[str, str] = {
    "angry": "angry",
    "contempt": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprised": "surprise",
}

# -- identity ---------------------------------------------------------------------------------------------
IDENTITY_DIM = 128  # dlib's face descriptor, the EBM's identity cue (Sec. III-C)

# -- SyncNet windows (syncnet_python v2, LipSync of Sec. IV-D) -----------------------------------------
LIP_FRAMES = 5  # video frames in one lip window
MFCC_COEFFICIENTS = 13
MFCC_WINDOW = 20  # MFCC frames (0.2 s at 100 frames/s) in one audio window
MFCC_PER_FRAME = 4  # MFCC frames per video frame
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
VSHIFT = 15  # audio offsets -VSHIFT .. VSHIFT searched (syncnet_python's vshift)

# -- landmark index groups (MediaPipe Face Landmarker, DESIGN section 3) ------------------------------------
N_LANDMARKS = 478
N_MESH = 468

# Face oval in MediaPipe's order: starts at the top of the forehead (10) and runs clockwise in the image.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# Outer lip contour (clockwise from the left mouth corner 61) and inner contour (from 78).
LIPS_OUTER: tuple[int, ...] = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
)  # fmt: skip
LIPS_INNER: tuple[int, ...] = (
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
)  # fmt: skip
# Eye contours (closed loops) and brows (upper then lower edge), "left"/"right" from the subject's view.
RIGHT_EYE: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_BROW: tuple[int, ...] = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW: tuple[int, ...] = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
NOSE: tuple[int, ...] = (168, 6, 197, 195, 5, 4, 1)
RIGHT_IRIS: tuple[int, ...] = (468, 469, 470, 471, 472)
LEFT_IRIS: tuple[int, ...] = (473, 474, 475, 476, 477)

LIPS: tuple[int, ...] = LIPS_OUTER + LIPS_INNER
JAW: tuple[int, ...] = FACE_OVAL[10:27]  # 361 ... 152 ... 132
UPPER_OVAL: tuple[int, ...] = FACE_OVAL[27:] + FACE_OVAL[:10]
POSE: tuple[int, ...] = RIGHT_EYE + LEFT_EYE + RIGHT_BROW + LEFT_BROW + NOSE + UPPER_OVAL
MOUTH: tuple[int, ...] = LIPS + JAW
ALL: tuple[int, ...] = POSE + LIPS + JAW

N_LIPS, N_JAW, N_POSE, N_MOUTH, N_ALL = len(LIPS), len(JAW), len(POSE), len(MOUTH), len(ALL)

# Positions of the groups inside an ``ALL``-ordered array (POSE, then LIPS, then JAW).
ALL_POSE = slice(0, N_POSE)
ALL_MOUTH = slice(N_POSE, N_ALL)
ALL_LIPS = slice(N_POSE, N_POSE + N_LIPS)
ALL_JAW = slice(N_POSE + N_LIPS, N_ALL)

assert len(set(ALL)) == N_ALL, "landmark groups overlap"
assert N_LIPS == 40 and N_JAW == 17 and N_MOUTH == 57
assert SAMPLES_PER_FRAME == SAMPLE_RATE / VIDEO_FPS
assert set(MEAD_TO_FER) == set(EMOTIONS) and set(MEAD_TO_FER.values()) == set(FER_CLASSES)
