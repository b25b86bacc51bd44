"""Image references: ``[registry[:port]/][namespace/]repo[:tag][@digest]``."""

from __future__ import annotations

import re
from typing import Any

from atomic_reactor.errors import InvalidImageName

__all__ = ["DEFAULT_TAG", "ImageName"]

DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}\Z")
_HOST = re.compile(
    r"(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?\Z"
)
_MAX_NAME = 255


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


class ImageName:
    """A parsed image reference, as atomic-reactor 1.6 had it: plain, changeable parts.

    ``ImageName.parse("localhost:5000/a/b/c:1")`` gives registry ``localhost:5000``,
    namespace ``a``, repo ``b/c`` and tag ``1``. A reference without a tag keeps
    ``tag`` None (``parse("fedora").to_str() == "fedora"``); where an engine needs a
    tag, :meth:`with_default_tag` (or ``to_str(explicit_tag=True)``) adds ``latest``.

    The parts can be assigned (``name.tag = "2"``) and :meth:`copy` gives an
    independent copy (with parts replaced: ``name.copy(registry="r:5000")``).
    Equality compares the parts; the hash is that of :meth:`to_str`, as in 1.6, so
    do not change a name while it is a key of a dict or a member of a set.
    """

    registry: str | None
    namespace: str | None
    repo: str | None
    tag: str | None
    digest: str | None

    def __init__(self, registry: str | None = None, namespace: str | None = None,
                 repo: str | None = None, tag: str | None = None,
                 digest: str | None = None) -> None:
        self.registry = registry
        self.namespace = namespace
        self.repo = repo
        self.tag = tag
        self.digest = digest

    def _parts(self) -> tuple[str | None, ...]:
        return (self.registry, self.namespace, self.repo, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageName) or type(self) is not type(other):
            return NotImplemented
        return self._parts() == other._parts()

    def __hash__(self) -> int:
        if self.repo is None:
            return hash(self._parts())
        return hash(self.to_str())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(
            ("registry", "namespace", "repo", "tag", "digest"), self._parts(), strict=True)
            if value is not None)
        return f"ImageName({fields})"

    @classmethod
    def parse(cls, image_name: str | ImageName) -> ImageName:
        """Parse ``image_name``; raise :class:`InvalidImageName` saying what is wrong."""
        if isinstance(image_name, ImageName):
            return image_name
        if not isinstance(image_name, str):
            raise InvalidImageName(f"invalid image name {image_name!r}: not a string")
        text = image_name.strip()
        if not text:
            raise InvalidImageName("invalid image name '': it is empty")
        if any(ch.isspace() for ch in text):
            raise InvalidImageName(f"invalid image name {text!r}: it contains white space")

        def bad(reason: str) -> InvalidImageName:
            return InvalidImageName(f"invalid image name {text!r}: {reason}")

        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise bad(f"digest {digest!r} is not of the form algorithm:hex")

        registry = None
        parts = rest.split("/")
        if len(parts) > 1 and _looks_like_registry(parts[0]):
            registry = parts.pop(0)
            if not _HOST.match(registry):
                raise bad(f"registry {registry!r} is not a valid host[:port]")

        tag = None
        last = parts[-1]
        if ":" in last:
            last, tag = last.rsplit(":", 1)
            parts[-1] = last
            if not _TAG.match(tag):
                raise bad(
                    f"tag {tag!r} must be up to 128 letters, digits, '_', '.' or '-', "
                    "not starting with '.' or '-'"
                )
        for part in parts:
            if not part:
                raise bad("it has an empty path component")
            if not _COMPONENT.match(part):
                raise bad(
                    f"component {part!r} must be lowercase letters and digits, "
                    "separated by '.', '_', '__' or '-'"
                )
        path = "/".join(parts)
        if len(path) + (len(registry) + 1 if registry else 0) > _MAX_NAME:
            raise bad(f"the name is longer than {_MAX_NAME} characters")

        namespace = None
        if len(parts) > 1:
            namespace = parts[0]
            repo = "/".join(parts[1:])
        else:
            repo = parts[0]
        return cls(registry=registry, namespace=namespace, repo=repo, tag=tag, digest=digest)

    def get_repo(self, explicit_namespace: bool = False) -> str:
        """``namespace/repo`` (``library/repo`` with ``explicit_namespace`` and none set)."""
        if self.repo is None:
            raise InvalidImageName("image name has no repository")
        namespace = self.namespace or ("library" if explicit_namespace else None)
        return f"{namespace}/{self.repo}" if namespace else self.repo

    def to_str(
        self,
        registry: bool = True,
        tag: bool = True,
        explicit_tag: bool = False,
        explicit_namespace: bool = False,
    ) -> str:
        """Render the reference; parts can be left out (``registry=False``, ``tag=False``)."""
        result = self.get_repo(explicit_namespace)
        if tag:
            digest = self.digest
            if self.tag and ":" in self.tag and digest is None:
                # 1.6 kept a digest in ``tag``; such a name prints as name@digest
                digest = self.tag
            elif self.tag:
                result = f"{result}:{self.tag}"
            if explicit_tag and not self.tag and not digest:
                result = f"{result}:{DEFAULT_TAG}"
            if digest:
                result = f"{result}@{digest}"
        if registry and self.registry:
            result = f"{self.registry}/{result}"
        return result

    def copy(self, **changes: Any) -> ImageName:
        """An independent copy, with some parts replaced if given
        (``name.copy(registry="r:5000", tag="1")``)."""
        parts = dict(zip(("registry", "namespace", "repo", "tag", "digest"), self._parts(),
                         strict=True))
        unknown = sorted(set(changes) - set(parts))
        if unknown:
            raise TypeError(f"ImageName has no part {unknown[0]!r}")
        parts.update(changes)
        return type(self)(**parts)

    def with_default_tag(self) -> ImageName:
        """This name as an engine resolves it: a copy tagged ``latest`` when it has
        neither tag nor digest (else an unchanged copy)."""
        if self.tag or self.digest:
            return self.copy()
        return self.copy(tag=DEFAULT_TAG)

    @property
    def name(self) -> str:
        """Registry and repository without tag or digest: what ``docker push`` takes."""
        return self.to_str(tag=False)

    def __str__(self) -> str:
        return self.to_str()


def is_loopback_registry(registry: str) -> bool:
    """Whether ``registry`` (``host``, ``host:port``, ``[v6]:port``) is on this machine."""
    import ipaddress  # only the engines and the registry client ask

    if registry.startswith("["):
        host = registry[1:].split("]", 1)[0]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
