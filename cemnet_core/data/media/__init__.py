"""Media I/O through the ffmpeg binary of ``imageio-ffmpeg`` (DESIGN section 2).

Every decode and encode runs ``ffmpeg`` as a child process with an argument list (never a shell string), in
its own process group (a terminal's Ctrl-C goes to Python, which stops ffmpeg and removes partial output),
and streams raw samples through a pipe, so memory stays flat in the length of the input:

    iter_video_frames   file -> chunks (n, H, W, 3) uint8 RGB, resampled to 25 fps (ffmpeg ``fps`` filter)
    iter_audio          file -> chunks (n,) float32 mono at 16 kHz (any audio file or a video's track)
    VideoWriter         chunks (n, H, W, 3) uint8 -> H.264 yuv420p (+ AAC) mp4, temp file + rename

``ffprobe`` is not shipped with ``imageio-ffmpeg``, so :func:`probe` parses the stream summary that
``ffmpeg -i FILE`` prints on stderr. Still images are read with Pillow (:func:`read_image`).

Errors: an unusable input (missing, empty, corrupt, truncated, lacking the needed stream) raises
:class:`~cemnet_core.errors.MediaError` naming the file; an output that cannot be written (read-only or
missing folder, disk full) raises :class:`~cemnet_core.errors.OutputError`, and no partial file is left
behind.

Modules: ``probe.py`` (:func:`probe`, :class:`MediaInfo`), ``decode.py`` (frames, audio, images),
``encode.py`` (:func:`write_audio`, :class:`VideoWriter`, :func:`write_video`). Callers use this package's
names (``media.read_video``, ``from cemnet_core.data.media import probe``): the interface of DESIGN
section 2.
"""

from cemnet_core.data.media.decode import iter_audio, iter_video_frames, load_audio, read_image, read_video
from cemnet_core.data.media.encode import AUDIO_FORMATS, X264_PRESETS, VideoWriter, write_audio, write_video
from cemnet_core.data.media.probe import MediaInfo, ffmpeg_exe, probe

__all__ = [
    "AUDIO_FORMATS",
    "X264_PRESETS",
    "MediaInfo",
    "VideoWriter",
    "ffmpeg_exe",
    "iter_audio",
    "iter_video_frames",
    "load_audio",
    "probe",
    "read_image",
    "read_video",
    "write_audio",
    "write_video",
]
