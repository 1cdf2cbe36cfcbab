"""Exceptions raised by the library; only the CLI turns them into messages and exit codes."""


class SpeechCLIError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class AudioError(SpeechCLIError):
    """An audio file is missing, empty, unreadable or otherwise unusable."""


class DatasetError(SpeechCLIError):
    """A corpus or feature cache is missing, malformed or inconsistent."""


class CheckpointError(SpeechCLIError):
    """A checkpoint is missing, corrupt or incompatible."""
