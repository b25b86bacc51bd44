"""The exception tree of atomic-reactor.

Every error the library raises on purpose is an :class:`AtomicReactorError`; catch
that to catch everything. Foreign exceptions (the Docker SDK's, requests', git's)
are translated into these types where the project meets them, so callers never
need to import another library's errors.

Each error carries the exit code the command line uses for it (see
``docs/exit-codes.md``) and a one-line, credential-free message::

    AtomicReactorError                     exit 1  (unexpected failure)
    ├── InputError                         exit 2  bad input, detected before anything ran
    │   ├── InvalidImageName
    │   ├── SourceError                    source cannot be fetched or is unusable
    │   │   └── InvalidSource              the source mapping itself is wrong (a ValueError)
    │   ├── DockerfileError                Dockerfile missing, empty, not UTF-8, no FROM
    │   ├── BuildJsonError                 malformed build json / substitution
    │   ├── PluginConfigError              unknown plugin, bad plugin argument
    │   └── EngineConfigError              unknown engine, or an option the engine cannot do
    ├── BuildFailed                        exit 3  the engine reported a failing build step
    ├── RegistryError                      exit 4  pull or push failed
    │   ├── PullError
    │   │   └── PlatformNotFound           a multi-platform base lacks a requested platform
    │   ├── PushError
    │   └── AuthenticationError            wrong or missing credentials
    ├── PluginFailed                       exit 5  a plugin raised (or its cause's code)
    ├── ImageTestsFailed                   exit 5  the built image failed its tests
    ├── NotReproducible                    exit 7  --check-reproducible: two builds differ
    ├── ArchiveError                       exit 1  an archive is malformed or unsafe
    ├── AutoRebuildCanceled                exit 1  an autorebuild stopped on purpose
    ├── EngineError                        exit 6  the container engine failed
    │   ├── EngineUnavailable              no engine answers at the socket
    │   └── ImageNotFound
    └── BuildCancelled                     exit 130 (SIGINT) / 143 (SIGTERM)
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from atomic_reactor._secrets import redact

if TYPE_CHECKING:
    from atomic_reactor._results import BuildResults

__all__ = [
    "ArchiveError",
    "AtomicReactorError",
    "AuthenticationError",
    "AutoRebuildCanceled",
    "BuildCancelled",
    "BuildFailed",
    "BuildJsonError",
    "DockerfileError",
    "EngineConfigError",
    "EngineError",
    "EngineUnavailable",
    "ImageNotFound",
    "ImageTestsFailed",
    "InputError",
    "InvalidImageName",
    "InvalidSource",
    "NotReproducible",
    "PlatformNotFound",
    "PluginConfigError",
    "PluginFailed",
    "PullError",
    "PushError",
    "RegistryError",
    "SourceError",
]


class AtomicReactorError(Exception):
    """Root of every error atomic-reactor raises on purpose."""

    #: the command line's exit code for this error
    exit_code: int = 1
    #: short, stable name of the error category, used in results and metadata
    category: str = "error"

    def __init__(self, message: str) -> None:

        message = redact(message)  # a registered secret never travels in an error
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        return {"type": type(self).__name__, "category": self.category, "message": self.message}


# -- bad input ---------------------------------------------------------------


class InputError(AtomicReactorError):
    """The request is wrong; nothing was built."""

    exit_code = 2
    category = "input"


class InvalidImageName(InputError, ValueError):
    """An image reference does not parse."""


class SourceError(InputError):
    """The source cannot be fetched (git, path) or does not fit the request."""


class InvalidSource(SourceError, ValueError):
    """The ``source`` mapping is wrong (unknown provider or key, bad value); a
    ``ValueError`` as 1.6's ``get_source_instance_for`` raised."""


class DockerfileError(InputError):
    """The Dockerfile is missing, unreadable or unusable."""


class BuildJsonError(InputError):
    """A build json document or a substitution is malformed."""


class PluginConfigError(InputError):
    """A requested plugin is unknown or its arguments do not match its declaration."""

    plugin: str | None = None
    argument: str | None = None

    def __init__(self, message: str, plugin: str | None = None, argument: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.argument = argument


class EngineConfigError(InputError):
    """The engine asked for is unknown or unusable, or cannot do what the request
    asks (e.g. build secrets with the docker engine)."""


# -- failures while building --------------------------------------------------


class BuildFailed(AtomicReactorError):
    """The engine ran the Dockerfile and a step failed."""

    exit_code = 3
    category = "build"


class RegistryError(AtomicReactorError):
    """Talking to a registry failed."""

    exit_code = 4
    category = "registry"
    registry: str | None = None

    def __init__(self, message: str, registry: str | None = None) -> None:
        super().__init__(message)
        self.registry = registry


class PullError(RegistryError):
    """An image could not be pulled."""


class PushError(RegistryError):
    """An image could not be pushed."""


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or wanted some and got none)."""


class PlatformNotFound(PullError):
    """A multi-platform build's base image has no image for a requested platform."""


class PluginFailed(AtomicReactorError):
    """A plugin raised while it ran.

    When the plugin raised one of the project's own errors (a push failing, say),
    that error is the ``cause`` and decides the exit code and category, so a push
    failing inside ``tag_and_push`` still exits 4.
    """

    category = "plugin"
    exit_code = 5
    plugin: str = ""
    cause: BaseException | None = None

    def __init__(self, message: str = "plugin failed", plugin: str = "",
                 cause: BaseException | None = None) -> None:
        # plugin defaults to "": 1.6 plugins raise PluginFailedException("message")
        super().__init__(message)
        self.plugin = plugin
        self.cause = cause
        self.exit_code = 5
        if isinstance(cause, AtomicReactorError):
            self.category = cause.category
            self.exit_code = cause.exit_code

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["plugin"] = self.plugin
        if self.cause is not None:
            data["cause"] = type(self.cause).__name__
        return data


class AutoRebuildCanceled(AtomicReactorError):
    """A plugin stopped an automatic rebuild on purpose (``stop_autorebuild_if_disabled``).

    The build stops after the pre-build plugins (the exit plugins still run) and
    ``workflow.autorebuild_canceled`` is set. 1.6's ``AutoRebuildCanceledException``
    (``atomic_reactor.plugin``) is this class and takes the same arguments.
    """

    category = "autorebuild"
    plugin_key: str = ""
    msg: str = ""

    def __init__(self, plugin_key: str, msg: str) -> None:
        super().__init__(f"plugin {plugin_key} canceled autorebuild: {msg}")
        self.plugin_key = plugin_key
        self.msg = msg

    def to_dict(self) -> dict[str, object]:
        """With the ``plugin`` that canceled (as a failed plugin's error names it) and
        its ``reason``."""
        return {**super().to_dict(), "plugin": self.plugin_key, "reason": self.msg}


class ImageTestsFailed(AtomicReactorError):
    """The built image did not pass its tests (or the tests could not run)."""

    exit_code = 5
    category = "test"


class NotReproducible(AtomicReactorError):
    """Two builds of the same source gave different images (``--check-reproducible``)."""

    exit_code = 7
    category = "reproducibility"


class ArchiveError(AtomicReactorError):
    """An archive is malformed, unsafe to unpack, or not what was expected."""

    category = "archive"


class EngineError(AtomicReactorError):
    """The container engine reported an error."""

    exit_code = 6
    category = "engine"


class EngineUnavailable(EngineError):
    """No engine answers at the configured address."""


class ImageNotFound(EngineError):
    """The engine does not have the image."""


class BuildCancelled(AtomicReactorError):
    """The build was cancelled by a signal (SIGINT/Ctrl-C or SIGTERM).

    Raised after the exit plugins ran; ``results`` holds what the build recorded.
    1.6 code raising ``BuildCanceledException("message")`` (the same class) may pass a
    message instead of a signal number: that is a cancel by SIGTERM with that message.
    """

    category = "cancel"

    def __init__(self, signum: int | str = signal.SIGTERM, results: BuildResults | None = None):
        if isinstance(signum, str):
            message, signum = signum or "build cancelled", signal.SIGTERM
        else:
            message = f"build cancelled by {signal.Signals(signum).name}"
        super().__init__(message)
        self.signum = signum
        self.results = results
        self.exit_code = 128 + int(signum)  # as shells report a death by signal
