"""An in-memory container engine implementing the ContainerEngine protocol, for unit tests.

Unit tests drive plugins through a real :class:`atomic_reactor.core.DockerTasker`
made with ``DockerTasker(engine=FakeEngine(...))``; only the engine is fake. It
keeps images (:class:`~atomic_reactor._engine.types.ImageInfo`) and containers
in dicts, answers the typed calls from them and renders the Docker-shaped dicts of
the 1.6 contract (``inspect_image``, ``inspect_container``) from the same data, so
both views always agree. What a real engine would do on its own (a build's steps,
what a container prints) is scripted by the test; every call is recorded in
:attr:`FakeEngine.calls`.

    engine = FakeEngine()
    engine.add_image("base:1", labels={"name": "base"}, env={"PATH": "/bin"})
    engine.registry["r.example/base:1"] = engine.make_image(labels={"v": "1"})
    engine.container_script = lambda spec: (0, ["line\\n"])
    tasker = DockerTasker(engine=engine)
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from atomic_reactor._engine.base import (
    ArchiveFormat,
    BuildOptions,
    ContainerSpec,
    ContainerState,
    EngineCapabilities,
    EngineEvent,
    ImageInfo,
    RegistryAuth,
    TransferOptions,
)
from atomic_reactor._reference import ImageName
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import (
    EngineConfigError,
    EngineError,
    ImageNotFound,
    PullError,
    PushError,
)

__all__ = ["BuildScript", "ContainerScript", "FakeContainer", "FakeEngine", "fake_tasker",
           "image_id_for"]

#: what a build does: (context_dir, tag, options) -> the events it streams. The image it
#: makes is added by the engine when the events end without an error.
BuildScript = Callable[[str, str, BuildOptions], Iterable[EngineEvent]]
#: what a container does when started: spec -> (exit code, output lines)
ContainerScript = Callable[[ContainerSpec], tuple[int, Sequence[str]]]

_counter = itertools.count(1)


def image_id_for(seed: str) -> str:
    """A stable ``sha256:`` id made from ``seed``."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _normal(name: str) -> str:
    """``name`` as the engine records it (``busybox`` -> ``busybox:latest``)."""
    try:
        return str(ImageName.parse(name))
    except ValueError:
        return name


@dataclass
class FakeContainer:
    spec: ContainerSpec
    id: str
    status: str = "created"
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)
    #: the file system ``export_container`` streams (a tar); empty tar by default
    filesystem: bytes = b""


class FakeEngine:
    """A :class:`~atomic_reactor._engine.base.ContainerEngine` that keeps everything in memory."""

    name = "fake"
    capabilities = EngineCapabilities()

    def __init__(self, images: Iterable[ImageInfo] = (), *, architecture: str = "amd64",
                 host: str = "build-host-1", address: str = "fake://engine",
                 capabilities: EngineCapabilities | None = None,
                 names_pulls: bool = False) -> None:
        self.address = address
        #: a pull ends with an event naming the image and its digest (as buildah's does)
        self.names_pulls = names_pulls
        if capabilities is not None:  # what the fake does well, as a test needs it
            self.capabilities = capabilities
        self.architecture = architecture
        self.host = host
        #: id -> image
        self.images: dict[str, ImageInfo] = {}
        #: what a pull of a reference gets (reference as the engine records it -> image)
        self.registry: dict[str, ImageInfo] = {}
        #: references pushed (-> the image id pushed), in order
        self.pushed: list[tuple[str, str]] = []
        self.containers: dict[str, FakeContainer] = {}
        #: every call: (method, first argument, ...)
        self.calls: list[tuple[Any, ...]] = []
        self.build_script: BuildScript | None = None
        self.container_script: ContainerScript | None = None
        #: ``docker save`` archives by image id (default: one made from the image's data)
        self.archives: dict[str, bytes] = {}
        self.loaded: list[bytes] = []
        self.closed = 0
        for info in images:
            self.images[info.id] = info

    # -- set-up helpers (not part of the protocol) -----------------------------------------
    def make_image(self, *, id: str | None = None, labels: Mapping[str, str] | None = None,
                   env: Mapping[str, str] | None = None, user: str = "",
                   layers: Sequence[str] = (), **fields: Any) -> ImageInfo:
        """An image value (not stored)."""
        image_id = id or image_id_for(f"image-{next(_counter)}")
        if not image_id.startswith("sha256:"):
            image_id = "sha256:" + image_id
        return ImageInfo(id=image_id, labels=dict(labels or {}),
                         env=tuple(f"{k}={v}" for k, v in (env or {}).items()), user=user,
                         layers=tuple(layers) or (image_id_for(image_id + "-layer"),),
                         architecture=fields.pop("architecture", self.architecture),
                         os=fields.pop("os", "linux"),
                         created=fields.pop("created", datetime.now(UTC)), **fields)

    def add_image(self, *names: str, **fields: Any) -> ImageInfo:
        """Store an image named ``names`` (see :meth:`make_image` for ``fields``)."""
        info = self.make_image(**fields)
        return self.store(info, *names)

    def store(self, info: ImageInfo, *names: str) -> ImageInfo:
        """Store ``info`` with ``names`` added (taken from any image that had them)."""
        wanted = [_normal(n) for n in names]
        for other_id, other in list(self.images.items()):
            if other_id != info.id and set(other.names) & set(wanted):
                self.images[other_id] = replace(
                    other, names=tuple(n for n in other.names if n not in wanted))
        current = self.images.get(info.id, info)
        merged = tuple(dict.fromkeys([*current.names, *info.names, *wanted]))
        stored = replace(info, names=merged)
        self.images[info.id] = stored
        return stored

    def _find(self, image: str) -> ImageInfo:
        if image in self.images:
            return self.images[image]
        bare = image.removeprefix("sha256:")
        if len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare):
            matches = [i for i in self.images.values()
                       if i.id.removeprefix("sha256:").startswith(bare)]
            if len(matches) == 1:
                return matches[0]
        wanted = _normal(image)
        for info in self.images.values():
            if wanted in info.names or image in info.digests:
                return info
        raise ImageNotFound(f"no such image: {image}")

    # -- images -----------------------------------------------------------------------------
    def build(self, context_dir: str, tag: str, options: BuildOptions
              ) -> Iterator[EngineEvent]:
        self.calls.append(("build", context_dir, tag, options))
        if options.secrets and self.build_script is None:
            raise EngineConfigError("the fake engine cannot mount build secrets")
        return self._build(context_dir, tag, options)

    def _build(self, context_dir: str, tag: str, options: BuildOptions
               ) -> Iterator[EngineEvent]:
        events = list(self.build_script(context_dir, tag, options)) if self.build_script \
            else [EngineEvent(message=f"Step 1/1 : building {tag} from {context_dir}\n")]
        image_id: str | None = None
        for event in events:
            yield event
            if event.error:
                return
            image_id = event.image_id or image_id
        info = self.make_image(id=image_id, labels=options.labels)
        self.store(info, tag)
        yield EngineEvent(message=f"Successfully built {info.id[7:19]}\n", image_id=info.id)

    def pull(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        self.calls.append(("pull", reference, auth, options))
        wanted = _normal(reference)
        if wanted not in self.registry:
            raise PullError(f"pulling {reference} failed: manifest unknown",
                            registry=ImageName.parse(reference).registry)
        return self._pulled(wanted)

    def _pulled(self, reference: str) -> Iterator[EngineEvent]:
        info = self.registry[reference]
        repository = ImageName.parse(reference).to_str(tag=False)
        digest = "sha256:" + hashlib.sha256(f"{reference}{info.id}".encode()).hexdigest()
        yield EngineEvent(message=f"{reference}: Pulling from {repository}\n")
        stored = self.store(replace(info, digests=tuple(dict.fromkeys(
            [*info.digests, f"{repository}@{digest}"]))), reference)
        self.registry[reference] = stored
        yield EngineEvent(message=f"Digest: {digest}\n", digest=digest)
        if self.names_pulls:
            yield EngineEvent(image_id=stored.id, digest=digest)

    def push(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        self.calls.append(("push", reference, auth, options))
        try:
            info = self._find(reference)
        except ImageNotFound:
            raise PushError(f"pushing {reference} failed: no such image",
                            registry=ImageName.parse(reference).registry) from None
        return self._pushed(_normal(reference), info)

    def _pushed(self, reference: str, info: ImageInfo) -> Iterator[EngineEvent]:
        digest = "sha256:" + hashlib.sha256(f"{reference}{info.id}".encode()).hexdigest()
        self.pushed.append((reference, info.id))
        self.registry[reference] = info
        yield EngineEvent(message=f"{reference}: digest: {digest} size: 525\n", digest=digest,
                          size=525)

    def tag(self, image: str, target: str, force: bool = False) -> None:
        self.calls.append(("tag", image, target))
        self.store(self._find(image), target)

    def image_info(self, image: str) -> ImageInfo:
        self.calls.append(("image_info", image))
        return self._find(image)

    def inspect_image(self, image: str) -> dict[str, Any]:
        self.calls.append(("inspect_image", image))
        info = self._find(image)
        return {
            "Id": info.id, "RepoTags": list(info.names), "RepoDigests": list(info.digests),
            "Created": info.created.isoformat() if info.created else "",
            "Architecture": info.architecture, "Os": info.os, "Size": info.size,
            "Config": {"Labels": dict(info.labels) or None, "Env": list(info.env) or None,
                       "User": info.user, "WorkingDir": info.workdir,
                       "Entrypoint": list(info.entrypoint) if info.entrypoint else None,
                       "Cmd": list(info.cmd) if info.cmd else None},
            "RootFS": {"Type": "layers", "Layers": list(info.layers)},
        }

    def image_exists(self, image: str) -> bool:
        try:
            self._find(image)
        except ImageNotFound:
            return False
        return True

    def list_images(self, name: str | None = None) -> list[ImageInfo]:
        self.calls.append(("list_images", name))
        if name is None:
            return list(self.images.values())
        return [info for info in self.images.values()
                if any(n.rpartition(":")[0] == name or n == name for n in info.names)]

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        self.calls.append(("remove_image", image))
        info = self._find(image)
        wanted = _normal(image)
        if wanted in info.names and len(info.names) > 1:
            self.images[info.id] = replace(info, names=tuple(n for n in info.names
                                                             if n != wanted))
            return
        if not force and any(c.spec.image in (info.id, *info.names)
                             for c in self.containers.values()):
            raise EngineError(f"removing image {image}: conflict: a container uses it")
        del self.images[info.id]

    def save_image(self, image: str, format: ArchiveFormat = "docker-archive"
                   ) -> Iterator[bytes]:
        self.calls.append(("save_image", image, format))
        info = self._find(image)
        if format != "docker-archive":
            raise EngineConfigError(f"the fake engine saves docker-archive only, not {format}")
        data = self.archives.get(info.id)
        if data is None:
            data = _archive(info)
        return iter([data[i:i + 65536] for i in range(0, len(data), 65536)] or [b""])

    def read_image(self, image: str) -> Iterator[bytes]:
        return self.save_image(image)

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        raw = data if isinstance(data, bytes) else b"".join(data)
        self.calls.append(("load_image", len(raw)))
        self.loaded.append(raw)
        try:
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                manifest_file = tar.extractfile("manifest.json")
                if manifest_file is None:
                    raise KeyError("manifest.json")
                manifest = json.load(manifest_file)
                loaded: list[str] = []
                for entry in manifest:
                    config_file = tar.extractfile(entry["Config"])
                    if config_file is None:
                        raise KeyError(entry["Config"])
                    config_bytes = config_file.read()
                    config = json.loads(config_bytes)
                    image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
                    inner = config.get("config") or {}
                    info = ImageInfo(
                        id=image_id, labels=dict(inner.get("Labels") or {}),
                        env=tuple(inner.get("Env") or ()),
                        architecture=str(config.get("architecture") or ""),
                        os=str(config.get("os") or ""),
                        layers=tuple((config.get("rootfs") or {}).get("diff_ids") or ()),
                        created=datetime.now(UTC))
                    self.store(info, *(entry.get("RepoTags") or []))
                    loaded.extend(entry.get("RepoTags") or [image_id])
        except (tarfile.TarError, KeyError, ValueError) as exc:
            raise EngineError(f"loading an image failed: {exc}") from None
        return loaded

    # -- containers -------------------------------------------------------------------------
    def create_container(self, spec: ContainerSpec) -> str:
        self.calls.append(("create_container", spec))
        self._find(spec.image)
        container_id = hashlib.sha256(f"container-{next(_counter)}".encode()).hexdigest()
        self.containers[container_id] = FakeContainer(spec=spec, id=container_id)
        return container_id

    def _container(self, container_id: str) -> FakeContainer:
        for cid, container in self.containers.items():
            if cid.startswith(container_id):
                return container
        raise EngineError(f"no such container: {container_id}")

    def start_container(self, container_id: str) -> None:
        self.calls.append(("start_container", container_id))
        container = self._container(container_id)
        code, output = self.container_script(container.spec) if self.container_script \
            else (0, [])
        container.status, container.exit_code = "exited", code
        container.output = list(output)

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        self.calls.append(("wait_container", container_id, timeout))
        container = self._container(container_id)
        if container.exit_code is None:
            raise EngineError(f"waiting for container {container_id[:12]}: it never started")
        return container.exit_code

    def container_logs(self, container_id: str, stderr: bool = True, follow: bool = True
                       ) -> Iterator[str]:
        container = self._container(container_id)
        lines = [line for line in container.output
                 if stderr or not line.startswith("stderr: ")]
        return iter(lines)

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self.calls.append(("stop_container", container_id))
        container = self._container(container_id)
        if container.status == "running":
            container.status, container.exit_code = "exited", 143

    def kill_container(self, container_id: str) -> None:
        self.calls.append(("kill_container", container_id))
        container = self._container(container_id)
        if container.status == "running":
            container.status, container.exit_code = "exited", 137

    def remove_container(self, container_id: str, force: bool = False) -> None:
        self.calls.append(("remove_container", container_id))
        container = self._container(container_id)
        del self.containers[container.id]

    def container_state(self, container_id: str) -> ContainerState:
        container = self._container(container_id)
        status = "exited" if container.status == "exited" else (
            "running" if container.status == "running" else "created")
        return ContainerState(id=container.id, image=container.spec.image,
                              status=status,  # type: ignore[arg-type]
                              exit_code=container.exit_code)

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        state = self.container_state(container_id)
        return {"Id": state.id, "Image": state.image,
                "State": {"Status": state.status, "Running": state.running,
                          "ExitCode": state.exit_code or 0, "OOMKilled": state.oom_killed}}

    def commit_container(self, container_id: str, repository: str | None = None,
                         tag: str | None = None, message: str | None = None,
                         changes: Sequence[str] | None = None) -> str:
        self.calls.append(("commit_container", container_id, repository, tag))
        container = self._container(container_id)
        base = self._find(container.spec.image)
        info = self.make_image(labels=base.labels, layers=(*base.layers, image_id_for(
            f"commit-{container.id}")))
        names = [f"{repository}:{tag or 'latest'}"] if repository else []
        return self.store(info, *names).id

    def export_container(self, container_id: str) -> Iterator[bytes]:
        self.calls.append(("export_container", container_id))
        container = self._container(container_id)
        return iter([container.filesystem or _tar({})])

    # -- the engine itself ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {"Name": self.host, "Architecture": "x86_64", "OSType": "linux"}

    def version(self) -> dict[str, Any]:
        return {"Arch": self.architecture, "Os": "linux", "Version": "0-fake"}

    def close(self) -> None:
        self.closed += 1


def _tar(files: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return out.getvalue()


def _archive(info: ImageInfo) -> bytes:
    """A ``docker save`` archive of ``info``: its config, and one empty layer per diff id
    (so the diff ids of the archive are those of the empty tar, not ``info.layers``)."""
    empty = _tar({})
    diff_id = "sha256:" + hashlib.sha256(empty).hexdigest()
    layers = [f"{i}/layer.tar" for i in range(len(info.layers))]
    config = json.dumps({
        "architecture": info.architecture, "os": info.os,
        "config": {"Labels": dict(info.labels), "Env": list(info.env)},
        "rootfs": {"type": "layers", "diff_ids": [diff_id] * len(layers)},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": list(info.names),
                            "Layers": layers}]).encode()
    files = {"manifest.json": manifest, config_name: config}
    files.update(dict.fromkeys(layers, empty))
    return _tar(files)


def fake_tasker(engine: FakeEngine | None = None, **kwargs: Any) -> DockerTasker:
    """A real :class:`DockerTasker` over ``engine`` (default: an empty :class:`FakeEngine`)."""
    return DockerTasker(engine=engine if engine is not None else FakeEngine(), **kwargs)
