"""Procedural speech for the synthetic corpus (DESIGN section 9): syllables -> articulation -> audio.

A sentence is a sequence of consonant + vowel syllables grouped into words. :func:`articulate` turns it into
control tracks at 125 Hz (one control frame per 128 samples at 16 kHz, five per 25 fps video frame): mouth
opening and width, formants F1-F3, voicing and noise amplitudes, and the pitch contour. The same tracks
drive the face (mouth opening and width, sampled per video frame) and the voice, so lips and sound agree.

:func:`synthesize` is source-filter synthesis done frame by frame in the short-time Fourier domain: a glottal
pulse train at f0 (with jitter and shimmer) and white noise are transformed, multiplied by the frame's
filter (cascaded second-order formant resonators |H(f)| = F^2 / sqrt((F^2 - f^2)^2 + (B f)^2), a glottal
roll-off and the emotion's spectral tilt; consonant noise through a band around its place of articulation)
and overlap-added back. This equals filtering the sources through slowly varying resonators, without a
per-sample loop. Emotion changes pitch mean and range, energy, tempo and tilt (see :class:`Prosody`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cemnet_core.contracts import SAMPLE_RATE

HOP = 128  # samples per control frame (8 ms)
N_FFT = 512
CONTROL_PER_VIDEO_FRAME = 5  # 640 samples per 25 fps frame
SAMPLES_PER_VIDEO_FRAME = HOP * CONTROL_PER_VIDEO_FRAME
LEAD_SECONDS = 0.28  # silence (closed mouth) before and after the sentence


@dataclass(frozen=True)
class Vowel:
    """Formants in Hz (adult male reference) and the mouth shape: opening (0..1) and width (fraction)."""

    f1: float
    f2: float
    f3: float
    opening: float
    width: float


@dataclass(frozen=True)
class Consonant:
    """A consonant: voicing, its noise band, how far the mouth stays open, and its mouth width."""

    voiced: bool
    noise_centre: float  # Hz
    noise_bandwidth: float  # Hz
    noise_level: float
    opening: float | None  # mouth opening during the consonant; None keeps the following vowel's
    width: float = 0.0


VOWELS: dict[str, Vowel] = {
    "a": Vowel(780, 1220, 2500, 1.0, 0.05),
    "e": Vowel(540, 1850, 2550, 0.6, 0.15),
    "i": Vowel(300, 2250, 3000, 0.28, 0.22),
    "o": Vowel(560, 900, 2450, 0.72, -0.22),
    "u": Vowel(320, 850, 2300, 0.32, -0.32),
}
CONSONANTS: dict[str, Consonant] = {
    "p": Consonant(False, 1500, 2500, 0.5, 0.0),
    "b": Consonant(True, 1200, 1500, 0.15, 0.0),
    "m": Consonant(True, 300, 300, 0.0, 0.0),
    "t": Consonant(False, 4000, 2000, 0.5, 0.15),
    "d": Consonant(True, 3500, 1500, 0.15, 0.15),
    "n": Consonant(True, 300, 300, 0.0, 0.18),
    "k": Consonant(False, 2500, 1200, 0.5, 0.25),
    "s": Consonant(False, 6000, 1500, 0.8, 0.12, 0.15),
    "f": Consonant(False, 4500, 4000, 0.35, 0.08),
    "l": Consonant(True, 350, 300, 0.0, 0.3),
    "h": Consonant(False, 0, 0, 0.3, None),
}
NASAL_OR_LIQUID = {"m": 0.35, "n": 0.35, "l": 0.6}  # voiced amplitude during the consonant (mouth near shut)


@dataclass(frozen=True)
class Sentence:
    """Words of syllables; each syllable is consonant + vowel, e.g. ``(("ba", "ti"), ("so",))``."""

    words: tuple[tuple[str, ...], ...]

    @property
    def syllables(self) -> tuple[str, ...]:
        """All syllables in order."""
        return tuple(syllable for word in self.words for syllable in word)

    def text(self) -> str:
        """The sentence written out, words joined by spaces."""
        return " ".join("".join(word) for word in self.words)


def random_sentence(rng: np.random.Generator, syllables: tuple[int, int] = (6, 9)) -> Sentence:
    """A random sentence of ``syllables[0]..syllables[1]`` syllables in words of 1-3 syllables."""
    total = int(rng.integers(syllables[0], syllables[1] + 1))
    consonants, vowels = sorted(CONSONANTS), sorted(VOWELS)
    words: list[tuple[str, ...]] = []
    while total > 0:
        length = min(total, int(rng.integers(1, 4)))
        words.append(tuple(str(rng.choice(consonants)) + str(rng.choice(vowels)) for _ in range(length)))
        total -= length
    return Sentence(tuple(words))


@dataclass(frozen=True)
class Voice:
    """A speaker's voice: f0 (Hz), formant scale (vocal tract length), loudness (dB) and speaking rate."""

    f0: float = 120.0
    formant_scale: float = 1.0
    loudness: float = 0.0
    rate: float = 1.0


@dataclass(frozen=True)
class Prosody:
    """Emotional voice changes (scaled by the emotion level before use; 0 everywhere is neutral)."""

    pitch: float = 0.0  # semitones added to the mean f0
    pitch_range: float = 0.0  # fraction added to the intonation range
    energy: float = 0.0  # dB
    tempo: float = 0.0  # fraction added to the speaking rate
    tilt: float = 0.0  # dB per octave added to the spectral slope (> 0 brighter, tenser voice)
    breathiness: float = 0.0  # aspiration noise mixed into voiced sounds

    def scaled(self, factor: float) -> Prosody:
        """The same prosody with every component multiplied by ``factor``."""
        return Prosody(**{name: value * factor for name, value in self.__dict__.items()})


@dataclass(frozen=True)
class Articulation:
    """Control tracks of one utterance, ``S`` control frames at 125 Hz (8 ms), each ``(S,)`` float64.

    ``syllable_times`` is ``(n, 2)`` start/end seconds of each syllable's vowel.
    """

    opening: np.ndarray
    width: np.ndarray
    formants: np.ndarray  # (S, 3) Hz, before the speaker's formant scale
    voicing: np.ndarray
    noise: np.ndarray
    noise_centre: np.ndarray
    noise_bandwidth: np.ndarray
    f0: np.ndarray  # Hz
    syllable_times: np.ndarray

    @property
    def num_video_frames(self) -> int:
        """Video frames at 25 fps covering the utterance."""
        return len(self.opening) // CONTROL_PER_VIDEO_FRAME

    def per_video_frame(self, track: np.ndarray) -> np.ndarray:
        """Average a control track over each video frame: ``(S,) -> (T,)``."""
        frames = self.num_video_frames
        return track[: frames * CONTROL_PER_VIDEO_FRAME].reshape(frames, CONTROL_PER_VIDEO_FRAME).mean(axis=1)


def _smooth(track: np.ndarray, sigma_frames: float) -> np.ndarray:
    radius = max(1, round(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(track, (radius, radius), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def articulate(sentence: Sentence, voice: Voice, prosody: Prosody, rng: np.random.Generator) -> Articulation:
    """Lay out a sentence in time and build its control tracks (coarticulation by smoothing)."""
    tempo = voice.rate * (1.0 + prosody.tempo)
    consonant_s, vowel_s, gap_s = 0.075 / tempo, 0.15 / tempo, 0.07 / tempo
    segments: list[tuple[float, str, str]] = []  # (duration, kind, phone)
    for word_index, word in enumerate(sentence.words):
        if word_index:
            segments.append((gap_s, "gap", ""))
        for syllable in word:
            segments.append((consonant_s * rng.uniform(0.85, 1.15), "consonant", syllable[0]))
            segments.append((vowel_s * rng.uniform(0.85, 1.2), "vowel", syllable[1]))
    speech_s = sum(duration for duration, _, _ in segments)
    video_frames = int(np.ceil((speech_s + 2 * LEAD_SECONDS) * 25))
    count = video_frames * CONTROL_PER_VIDEO_FRAME
    rate = SAMPLE_RATE / HOP
    opening, width = np.zeros(count), np.zeros(count)
    formants = np.tile(np.array([500.0, 1500.0, 2500.0]), (count, 1))  # (S, 3) schwa at rest
    voicing, noise = np.zeros(count), np.zeros(count)
    noise_centre, noise_bandwidth = np.full(count, 3000.0), np.full(count, 2000.0)
    accents = np.zeros(count)
    vowel_times = []
    start = LEAD_SECONDS
    word_start = True
    for index, (duration, kind, phone) in enumerate(segments):
        lo, hi = round(start * rate), round((start + duration) * rate)
        if kind == "vowel":
            vowel = VOWELS[phone]
            opening[lo:hi], width[lo:hi] = vowel.opening, vowel.width
            formants[lo:hi] = (vowel.f1, vowel.f2, vowel.f3)
            voicing[lo:hi] = 0.45 + 0.55 * vowel.opening  # open vowels are louder
            vowel_times.append((start, start + duration))
            if word_start:
                accents[(lo + hi) // 2] = 1.0
            word_start = False
        elif kind == "consonant":
            consonant = CONSONANTS[phone]
            following = VOWELS[segments[index + 1][2]]
            opening[lo:hi] = following.opening if consonant.opening is None else consonant.opening
            width[lo:hi] = consonant.width
            formants[lo:hi] = (following.f1, following.f2, following.f3)
            voicing[lo:hi] = NASAL_OR_LIQUID.get(phone, 0.2 if consonant.voiced else 0.0)
            if phone in ("m", "n", "l"):
                formants[lo:hi] = (280.0, 1100.0 if phone != "l" else 1300.0, 2500.0)
            noise[lo:hi] = consonant.noise_level
            noise_centre[lo:hi], noise_bandwidth[lo:hi] = consonant.noise_centre, consonant.noise_bandwidth
        else:
            word_start = True
        start += duration
    # Pitch: declination over the utterance, an accent on each word's first vowel, small drift.
    position = np.clip((np.arange(count) / rate - LEAD_SECONDS) / max(speech_s, 1e-3), 0.0, 1.0)
    range_factor = max(0.1, 1.0 + prosody.pitch_range)
    accent_curve = _smooth(accents, 8.0)
    accent_curve /= max(float(accent_curve.max()), 1e-9)  # bumps of one semitone-scale unit at the peak
    semitones = prosody.pitch + range_factor * (1.5 - 3.0 * position + 3.0 * accent_curve)
    semitones += 0.3 * _smooth(rng.standard_normal(count), 12.0) * 5.0
    f0 = voice.f0 * 2.0 ** (semitones / 12.0)
    return Articulation(
        opening=_smooth(opening, 3.0),
        width=_smooth(width, 3.0),
        formants=np.stack([_smooth(formants[:, i], 2.0) for i in range(3)], axis=1),
        voicing=_smooth(voicing, 1.2),
        noise=_smooth(noise, 1.0),
        noise_centre=noise_centre,
        noise_bandwidth=noise_bandwidth,
        f0=f0,
        syllable_times=np.asarray(vowel_times, dtype=np.float64).reshape(-1, 2),
    )


def _pulse_train(
    f0: np.ndarray, samples: int, rng: np.random.Generator, jitter: float = 0.01, shimmer: float = 0.06
) -> np.ndarray:
    """Glottal pulses ``(samples,)``: one impulse per period of the control-rate ``f0``, with jitter."""
    train = np.zeros(samples)
    time = 0.0
    while True:
        frequency = f0[min(int(time / HOP), len(f0) - 1)]
        time += SAMPLE_RATE / frequency * (1.0 + jitter * rng.standard_normal())
        if time >= samples - 1:
            return train
        whole = int(time)
        fraction = time - whole  # split the impulse between two samples: sub-sample timing
        amplitude = 1.0 + shimmer * rng.standard_normal()
        train[whole] += amplitude * (1.0 - fraction)
        train[whole + 1] += amplitude * fraction


def _stft(signal: np.ndarray, frames: int) -> np.ndarray:
    window = np.hanning(N_FFT + 1)[:-1]
    padded = np.pad(signal, (N_FFT // 2, N_FFT // 2 + N_FFT))
    starts = np.arange(frames) * HOP
    chunks = padded[starts[:, None] + np.arange(N_FFT)[None]]  # (S, N_FFT)
    return np.fft.rfft(chunks * window, axis=1)  # (S, N_FFT/2+1)


def _istft(spectrum: np.ndarray, samples: int) -> np.ndarray:
    window = np.hanning(N_FFT + 1)[:-1]
    chunks = np.fft.irfft(spectrum, n=N_FFT, axis=1) * window  # (S, N_FFT)
    output = np.zeros(len(spectrum) * HOP + N_FFT)
    norm = np.zeros_like(output)
    for index, chunk in enumerate(chunks):
        output[index * HOP : index * HOP + N_FFT] += chunk
        norm[index * HOP : index * HOP + N_FFT] += window**2
    output = output / np.maximum(norm, 1e-3)
    return output[N_FFT // 2 : N_FFT // 2 + samples]


def _resonators(frequencies: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Cascade of second-order resonators: ``(F,)`` Hz, ``(S, R)`` formants/bandwidths -> ``(S, F)`` gain."""
    f = frequencies[None, :, None]  # (1, F, 1)
    centre, width = formants[:, None, :], bandwidths[:, None, :]  # (S, 1, R)
    gain = centre**2 / np.sqrt((centre**2 - f**2) ** 2 + (width * f) ** 2)  # (S, F, R)
    return gain.prod(axis=2)


def synthesize(
    articulation: Articulation, voice: Voice, prosody: Prosody, rng: np.random.Generator
) -> np.ndarray:
    """Render the articulation as speech: ``(T * 640,)`` float32 at 16 kHz, T = video frames."""
    samples = articulation.num_video_frames * SAMPLES_PER_VIDEO_FRAME
    control = len(articulation.opening)
    frequencies = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)  # (F,)
    scale = voice.formant_scale
    formants = np.concatenate([articulation.formants * scale, np.full((control, 1), 3500.0 * scale)], axis=1)
    bandwidths = np.broadcast_to(np.array([80.0, 100.0, 150.0, 220.0]), formants.shape)
    vocal_tract = _resonators(frequencies, formants, bandwidths)  # (S, F)
    octaves = np.log2(np.maximum(frequencies, 60.0) / 1000.0)  # (F,)
    source = 1.0 / np.sqrt(1.0 + (frequencies / 250.0) ** 2) * 2.0 ** (prosody.tilt * octaves / 6.02)  # (F,)
    pulses = _stft(_pulse_train(articulation.f0, samples, rng), control)  # (S, F)
    white = _stft(rng.standard_normal(samples), control)  # (S, F)
    band = np.exp(
        -0.5
        * (
            (frequencies[None] - articulation.noise_centre[:, None])
            / np.maximum(articulation.noise_bandwidth[:, None], 1.0)
        )
        ** 2
    )  # (S, F)
    aspiration = articulation.noise_centre[:, None] == 0.0  # "h": noise through the vocal tract
    band = np.where(aspiration, vocal_tract * 0.1, band)
    breath = 0.02 + 0.05 * max(prosody.breathiness, 0.0)
    voiced_filter = vocal_tract * source[None]  # (S, F)
    spectrum = pulses * voiced_filter * articulation.voicing[:, None]
    noise_filter = band * articulation.noise[:, None] + breath * voiced_filter * articulation.voicing[:, None]
    spectrum += 0.05 * white * noise_filter
    audio = _istft(spectrum, samples)
    gain = 1.5 * 10.0 ** ((voice.loudness + prosody.energy) / 20.0)
    return np.tanh(audio * gain).astype(np.float32)
