"""Typed errors of CEM-Net.

Core code raises a :class:`CemnetError` subclass whose message tells the user what to do; the CLI prints
that one message and exits non-zero (no traceback unless ``--debug`` or ``CEMNET_DEBUG=1``).
Programming errors (wrong tensor shapes passed by code) stay ``ValueError``/``TypeError``.
"""

from __future__ import annotations


class CemnetError(Exception):
    """Base of every error a user can cause and fix; ``exit_code`` is what the CLI returns."""

    exit_code: int = 1


class InputError(CemnetError):
    """A user-supplied input (file, folder, option value) cannot be used."""

    exit_code = 2


class MediaError(InputError):
    """A video, audio or image file is missing, corrupt, truncated, empty or lacks a needed stream."""


class NoFaceError(InputError):
    """No usable face was found where one is required."""


class ConfigError(InputError):
    """A configuration file or ``--set key=value`` override is invalid."""


class DataError(CemnetError):
    """A processed dataset is missing, empty or inconsistent."""

    exit_code = 3


class WeightsError(CemnetError):
    """A pretrained file or release folder is missing, cannot be fetched or cannot be loaded."""

    exit_code = 4


class ChecksumError(WeightsError):
    """A file's sha256 differs from the one the registry pins; the file is never loaded."""


class OutputError(CemnetError):
    """An output cannot be written (read-only folder, disk full, ...); nothing partial is left behind."""

    exit_code = 5


class Interrupted(CemnetError):
    """The user pressed Ctrl-C; work already finished has been kept."""

    exit_code = 130
