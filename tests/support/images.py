"""Engine-neutral looks into images for integration tests, through a real ``DockerTasker``.

The tests of a plugin check what it did to an image: its labels, its layers, a file in
it, what a command prints in it. These helpers do that through the tasker's typed
methods, so the same test runs against docker and buildah (the engine the tasker was
made for): nothing here speaks to an engine's SDK or reads its JSON.

- :func:`run_in`: run a command in a container of the image; (exit code, output).
- :func:`image_files`: the image's file system (one export of a never-started
  container), to read files and list directories.
- :func:`build_and_push`: build a small Dockerfile and push it to a test registry
  (a parent image for a test), leaving no local name behind.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atomic_reactor._engine.base import ContainerSpec
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError

__all__ = ["ImageFiles", "build_and_push", "image_exists", "image_files", "run_in"]

#: files larger than this are listed but not kept in memory
_MAX_KEPT = 4 * 1024 * 1024


def image_exists(tasker: DockerTasker, ref: str) -> bool:
    """Whether the engine has ``ref`` (a name or an image id)."""
    return tasker.find_image(ref) is not None


@dataclass(frozen=True)
class RunOutput:
    code: int
    stdout: str
    stderr: str


def run_in(tasker: DockerTasker, image: str, command: Sequence[str], *,
           entrypoint: Sequence[str] | None = None, timeout: float = 120) -> RunOutput:
    """Run ``command`` (after ``entrypoint``) in a container of ``image``, wait for it,
    remove the container; its exit code and output."""
    spec = ContainerSpec(image=image, command=list(command),
                         entrypoint=list(entrypoint) if entrypoint is not None else None)
    container = tasker.run_container(spec)
    try:
        code = tasker.wait_container(container, timeout=timeout)
        everything = "".join(tasker.logs(container, stderr=True, stream=False))
        stdout = "".join(tasker.logs(container, stderr=False, stream=False))
    finally:
        tasker.remove_container(container, force=True)
    stderr = everything.replace(stdout, "", 1) if stdout else everything
    return RunOutput(code, stdout, stderr)


def sh(tasker: DockerTasker, image: str, script: str, timeout: float = 120) -> str:
    """Output of ``/bin/sh -c script`` in ``image`` (which must exit 0)."""
    done = run_in(tasker, image, [script], entrypoint=["/bin/sh", "-c"], timeout=timeout)
    assert done.code == 0, f"{script!r} in {image} exited {done.code}: {done.stderr}"
    return done.stdout


@dataclass
class ImageFiles:
    """An image's file system: regular files (content), directories, links."""

    files: dict[str, bytes] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    symlinks: dict[str, str] = field(default_factory=dict)

    def read(self, path: str) -> bytes | None:
        """Content of the regular file ``path`` (a directory: ``b"<dir>"``; None if absent)."""
        path = _normal(path)
        if path in self.directories:
            return b"<dir>"
        return self.files.get(path)

    def exists(self, path: str) -> bool:
        path = _normal(path)
        return path in self.files or path in self.directories or path in self.symlinks

    def entries(self, directory: str) -> list[str] | None:
        """Everything below ``directory`` (relative names, sorted); None if no such
        directory."""
        directory = _normal(directory)
        if directory not in self.directories:
            return None
        prefix = directory.rstrip("/") + "/"
        every = [*self.files, *self.directories, *self.symlinks]
        return sorted(name[len(prefix):] for name in every if name.startswith(prefix))


def _normal(name: str) -> str:
    stripped = name.removeprefix(".").strip("/")
    return "/" + stripped if stripped else "/"


def image_files(tasker: DockerTasker, image: str) -> ImageFiles:
    """The file system of ``image`` (exported from a container that never runs)."""
    container = tasker.engine.create_container(ContainerSpec(image=image, command=["true"]))
    stream = tasker.export_container(container)
    try:
        return _read_tar(_StreamFile(stream))
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        tasker.remove_container(container, force=True)


def _read_tar(fileobj: _StreamFile) -> ImageFiles:
    found = ImageFiles()
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = _normal(member.name)
            if member.isdir():
                found.directories.add(name)
            elif member.issym():
                found.symlinks[name] = member.linkname
            elif member.islnk():
                found.files[name] = found.files.get(_normal(member.linkname), b"")
            elif member.isfile():
                extracted = tar.extractfile(member)
                if extracted is not None and member.size <= _MAX_KEPT:
                    found.files[name] = extracted.read()
                else:
                    found.files[name] = b""
    return found


class _StreamFile:
    """A read-only file over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def build_and_push(tasker: DockerTasker, dockerfile: str, reference: str) -> str:
    """Build ``dockerfile`` as ``reference`` (``registry/repo:tag``), push it (the
    registry is a plain-HTTP test registry), remove the local name; the image id."""
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-test-parent-") as context:
        Path(context, "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
        built = tasker.build_image(context, reference)
    try:
        tasker.push(reference, insecure=True)
    finally:
        with contextlib.suppress(AtomicReactorError):
            tasker.remove_image(reference, noprune=True)
    return built.image_id
