"""Where the Dockerfile and its build context come from (the ``source`` of a build).

The ``source`` mapping of a build request (atomic-reactor 1.6 API)::

    {"provider": "git",                       # or "path"
     "uri": "https://example.com/repo.git",   # path: "file:///abs/dir"
     "dockerfile_path": "./",                 # optional, relative to the source root
     "provider_params": {"git_commit": "main"}}   # optional; git only

:meth:`SourceSpec.from_dict` validates the mapping, :func:`get_source_instance_for`
turns it into a :class:`Source`. A source fetches lazily into a temporary directory
it owns (:attr:`Source.path`) and removes it in :meth:`Source.cleanup`::

    with get_source_instance_for(build_json["source"]) as source:
        dockerfile, context_dir = source.get_dockerfile_path()

A :class:`GitSource` runs the ``git`` CLI (shallow fetch when possible, full fetch
otherwise); a :class:`PathSource` copies a local directory, symlinks copied as links
and those pointing outside the directory dropped. Every failure is a
:class:`~atomic_reactor.errors.SourceError` or, for the Dockerfile itself, a
:class:`~atomic_reactor.errors.DockerfileError`; credentials embedded in a URI are
never shown.
"""

from __future__ import annotations

import abc
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from atomic_reactor import _git
from atomic_reactor._git import one_line, redact_uri
from atomic_reactor.errors import DockerfileError, InvalidSource, SourceError

__all__ = [
    "DEFAULT_DOCKERFILE_PATH",
    "PROVIDERS",
    "GitSource",
    "PathSource",
    "Source",
    "SourceSpec",
    "VcsInfo",
    "get_source_instance_for",
]

logger = logging.getLogger(__name__)

#: the providers a ``source`` may name
PROVIDERS: tuple[str, ...] = ("git", "path")
#: ``dockerfile_path`` when the source does not give one: the source root
DEFAULT_DOCKERFILE_PATH = "./"
DOCKERFILE_NAME = "Dockerfile"

_SOURCE_KEYS = ("provider", "uri", "dockerfile_path", "provider_params")
_PROVIDER_PARAMS: Mapping[str, frozenset[str]] = {
    "git": frozenset({"git_commit"}),
    "path": frozenset(),
}
_TMPDIR_PREFIX = "atomic-reactor-source-"
# could be an abbreviated or full commit id (sha1 or sha256)
_HEXISH = re.compile(r"[0-9a-fA-F]{4,64}\Z")


# -- the validated ``source`` mapping ------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def _listing(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


@dataclass(frozen=True)
class SourceSpec:
    """The validated form of a build's ``source`` mapping. Immutable.

    Construction checks the structure (provider, types, keys); what can only be
    checked against the world -- the repository, the commit, the directory, the
    Dockerfile -- is checked when the source is fetched.
    """

    provider: str
    uri: str
    dockerfile_path: str = DEFAULT_DOCKERFILE_PATH
    provider_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str):
            raise InvalidSource(
                f"source 'provider' must be a string, got {_type_name(self.provider)}"
            )
        if self.provider not in PROVIDERS:
            raise InvalidSource(
                f"unknown source provider {self.provider!r} (expected {_listing(list(PROVIDERS))})"
            )
        if not isinstance(self.uri, str):
            raise InvalidSource(f"source 'uri' must be a string, got {_type_name(self.uri)}")
        if not self.uri.strip():
            raise InvalidSource("source 'uri' is empty")
        if "\0" in self.uri:
            raise InvalidSource("source 'uri' contains a NUL character")
        if not isinstance(self.dockerfile_path, str):
            raise InvalidSource(
                f"source 'dockerfile_path' must be a string, got {_type_name(self.dockerfile_path)}"
            )
        if "\0" in self.dockerfile_path:
            raise InvalidSource("source 'dockerfile_path' contains a NUL character")
        params = self.provider_params
        if not isinstance(params, Mapping):
            raise InvalidSource(
                f"source 'provider_params' must be a mapping, got {_type_name(params)}"
            )
        allowed = _PROVIDER_PARAMS[self.provider]
        unknown = sorted(str(key) for key in params if key not in allowed)
        if unknown:
            expected = f"expected {_listing(sorted(allowed))}" if allowed else "it takes none"
            raise InvalidSource(
                f"unknown provider_params for provider {self.provider!r}: "
                f"{_listing(unknown)} ({expected})"
            )
        commit = params.get("git_commit")
        if commit is not None and not isinstance(commit, str):
            raise InvalidSource(
                f"provider_params 'git_commit' must be a string, got {_type_name(commit)}"
            )
        object.__setattr__(self, "provider_params", MappingProxyType(dict(params)))

    @classmethod
    def from_dict(cls, source: Mapping[str, Any]) -> SourceSpec:
        """Validate a ``source`` mapping; :class:`SourceError` names what is wrong.

        Optional keys given as ``None`` take their defaults.
        """
        if not isinstance(source, Mapping):
            raise InvalidSource(f"source must be a mapping, got {_type_name(source)}")
        unknown = sorted(str(key) for key in source if key not in _SOURCE_KEYS)
        if unknown:
            raise InvalidSource(
                f"unknown source key(s): {_listing(unknown)} "
                f"(expected {_listing(list(_SOURCE_KEYS))})"
            )
        for key in ("provider", "uri"):
            if source.get(key) is None:
                raise InvalidSource(f"source has no {key!r}")
        dockerfile_path = source.get("dockerfile_path")
        params = source.get("provider_params")
        return cls(
            provider=source["provider"],
            uri=source["uri"],
            dockerfile_path=DEFAULT_DOCKERFILE_PATH if dockerfile_path is None else dockerfile_path,
            provider_params={} if params is None else params,
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``source`` mapping again (plain, mutable copies)."""
        return {
            "provider": self.provider,
            "uri": self.uri,
            "dockerfile_path": self.dockerfile_path,
            "provider_params": dict(self.provider_params),
        }

    def __repr__(self) -> str:
        return (
            f"SourceSpec(provider={self.provider!r}, uri={redact_uri(self.uri)!r}, "
            f"dockerfile_path={self.dockerfile_path!r}, "
            f"provider_params={dict(self.provider_params)!r})"
        )

    def __hash__(self) -> int:
        return hash(
            (
                self.provider,
                self.uri,
                self.dockerfile_path,
                tuple(sorted((str(k), repr(v)) for k, v in self.provider_params.items())),
            )
        )

    def __reduce__(self) -> tuple[Any, ...]:  # the mapping proxy cannot be pickled/copied
        return (
            type(self),
            (self.provider, self.uri, self.dockerfile_path, dict(self.provider_params)),
        )


@dataclass(frozen=True)
class VcsInfo:
    """Where a source came from in version control (labels, metadata)."""

    vcs_type: str
    #: the repository URI, credentials removed
    vcs_url: str
    #: the full id of the commit built
    vcs_ref: str


# -- filesystem helpers ---------------------------------------------------------


def _is_within(path: str, root: str) -> bool:
    """Whether *path* is *root* or below it (both absolute and resolved)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _dir_name(text: str) -> str:
    """A harmless directory-name prefix derived from a repository or directory name."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._-")[:64]
    return name or "source"


def _rmtree(path: str) -> None:
    """Remove *path* even where copied permissions forbid it; log what cannot go."""

    def retry_writable(func: Callable[..., Any], failed: str, exc_info: Any) -> None:
        error = exc_info[1]
        if isinstance(error, FileNotFoundError):
            return
        if not isinstance(error, PermissionError):
            raise error
        parent = os.path.dirname(failed)
        os.chmod(parent, stat.S_IRWXU)
        if not os.path.islink(failed) and os.path.isdir(failed):
            os.chmod(failed, stat.S_IRWXU)
        func(failed)

    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path, onerror=retry_writable)
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, one_line(str(exc)))


# -- sources ---------------------------------------------------------------------


class Source(abc.ABC):
    """A build's source: fetched on first use into a directory this object owns.

    ``tmpdir`` is where the source goes; when not given a new temporary directory
    is made, and :meth:`cleanup` removes it. When given, :meth:`cleanup` removes
    only what the source created in it (the directory itself too if it did not
    exist yet).
    """

    #: the provider a subclass handles ("" in the base class: any)
    provider_name: ClassVar[str] = ""

    def __init__(
        self,
        provider: str,
        uri: str,
        dockerfile_path: str | None = None,
        provider_params: Mapping[str, Any] | None = None,
        tmpdir: str | os.PathLike[str] | None = None,
    ) -> None:
        spec = SourceSpec(
            provider=provider,
            uri=uri,
            dockerfile_path=DEFAULT_DOCKERFILE_PATH if dockerfile_path is None else dockerfile_path,
            provider_params={} if provider_params is None else provider_params,
        )
        if self.provider_name and spec.provider != self.provider_name:
            raise SourceError(
                f"{type(self).__name__} handles provider {self.provider_name!r}, "
                f"not {spec.provider!r}"
            )
        self.provider: str = spec.provider
        self.uri: str = spec.uri
        self.dockerfile_path: str = spec.dockerfile_path
        self.provider_params: dict[str, Any] = dict(spec.provider_params)
        self._path: str | None = None
        self._created: list[str] = []
        self._cleaned = False
        # without a tmpdir, one is made on first use: a Source that never fetches
        # (a workflow refused before it ran, say) leaves nothing behind
        self._tmpdir: str | None = None
        self._owns_tmpdir = tmpdir is None
        if tmpdir is not None:
            self._tmpdir = os.path.abspath(os.fspath(tmpdir))
            self._owns_tmpdir = not os.path.isdir(self._tmpdir)
            if self._owns_tmpdir:
                try:
                    os.makedirs(self._tmpdir)
                except OSError as exc:
                    raise SourceError(
                        f"cannot create source tmpdir {self._tmpdir}: {exc.strerror or exc}"
                    ) from None

    @property
    def tmpdir(self) -> str:
        """The directory this Source fetches into (made on first use when not given)."""
        if self._tmpdir is None:
            self._check_not_cleaned()
            self._tmpdir = tempfile.mkdtemp(prefix=_TMPDIR_PREFIX)
        return self._tmpdir

    # -- description ---------------------------------------------------------

    @property
    def spec(self) -> SourceSpec:
        """This source as a :class:`SourceSpec` (validated again from the attributes)."""
        return SourceSpec(self.provider, self.uri, self.dockerfile_path, self.provider_params)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, uri={redact_uri(self.uri)!r}, "
            f"dockerfile_path={self.dockerfile_path!r}, tmpdir={self._tmpdir!r})"
        )

    # -- fetching ------------------------------------------------------------

    @property
    def path(self) -> str:
        """The source root directory (inside :attr:`tmpdir`); fetched on first access."""
        self._check_not_cleaned()
        if self._path is None:
            self._path = self.get()
        return self._path

    @abc.abstractmethod
    def get(self) -> str:
        """Fetch the source (once) and return the source root directory."""

    def get_dockerfile_path(self) -> tuple[str, str]:
        """``(Dockerfile, build context directory)``, both absolute, inside the source.

        ``dockerfile_path`` may name the Dockerfile or a directory holding one named
        ``Dockerfile``. :class:`SourceError` when it is absolute or leads outside the
        source root (``..``, symlinks); :class:`DockerfileError` when there is no
        Dockerfile there.
        """
        root = os.path.realpath(self.path)
        relative = self.dockerfile_path or DEFAULT_DOCKERFILE_PATH
        if "\0" in relative:
            raise SourceError("dockerfile_path contains a NUL character")
        if os.path.isabs(relative):
            raise SourceError(
                f"dockerfile_path {relative!r} is absolute; it must be relative to the source root"
            )
        outside = SourceError(f"dockerfile_path {relative!r} points outside the source")
        joined = os.path.join(root, relative)
        resolved = os.path.realpath(joined)
        if not _is_within(os.path.normpath(joined), root) or not _is_within(resolved, root):
            raise outside

        if os.path.isdir(resolved):
            shown = os.path.normpath(os.path.join(relative, DOCKERFILE_NAME))
            context_dir = resolved
            dockerfile = os.path.join(resolved, DOCKERFILE_NAME)
        elif relative.endswith(("/", os.sep)):  # meant a directory, which is not there
            shown = os.path.normpath(os.path.join(relative, DOCKERFILE_NAME))
            raise DockerfileError(f"no Dockerfile at {shown} in the source")
        else:
            shown = os.path.normpath(relative)
            head, name = os.path.split(joined)
            context_dir = os.path.realpath(head)
            if not _is_within(context_dir, root):
                raise outside
            dockerfile = os.path.join(context_dir, name)

        if not _is_within(os.path.realpath(dockerfile), root):
            raise outside
        if not os.path.exists(dockerfile):
            raise DockerfileError(f"no Dockerfile at {shown} in the source")
        if not os.path.isfile(dockerfile):
            raise DockerfileError(f"{shown} in the source is not a file")
        return dockerfile, context_dir

    def get_vcs_info(self) -> VcsInfo | None:
        """Version control information about the source, None when there is none."""
        return None

    def source_date_epoch(self) -> int | None:
        """The time of the source for reproducible builds (``SOURCE_DATE_EPOCH``): the
        committer time of the commit checked out, None when the source has no commit.
        Fetches the source if needed."""
        root = self.path
        if not os.path.isdir(os.path.join(root, ".git")):
            return None
        result = _git.run_git(["log", "-1", "--format=%ct", "HEAD"], cwd=root)
        text = result.stdout.strip()
        return int(text) if result.ok and text.isdigit() else None

    # -- directories -----------------------------------------------------------

    def _check_not_cleaned(self) -> None:
        if self._cleaned:
            raise SourceError(f"source {redact_uri(self.uri)} was cleaned up")

    def _new_root(self, name: str) -> str:
        """Create (and remember) a fresh, empty directory for the source in tmpdir."""
        self._check_not_cleaned()
        try:
            root = tempfile.mkdtemp(prefix=f"{_dir_name(name)}-", dir=self.tmpdir)
        except OSError as exc:
            raise SourceError(
                f"cannot create a directory in source tmpdir {self.tmpdir}: {exc.strerror or exc}"
            ) from None
        self._created.append(root)
        return os.path.realpath(root)

    def _discard(self, root: str) -> None:
        """Remove a directory made by :meth:`_new_root` (after a failed fetch)."""
        _rmtree(root)

    def cleanup(self) -> None:
        """Remove everything this source created. Safe to call more than once."""
        if self._owns_tmpdir:
            if self._tmpdir is not None:
                _rmtree(self._tmpdir)
        else:
            for root in self._created:
                _rmtree(root)
        self._created.clear()
        self._path = None
        self._cleaned = True

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


# -- git ---------------------------------------------------------------------------


def _is_local_path(uri: str) -> bool:
    """Whether git reads *uri* as a local path (not ``scheme://`` nor ``host:path``)."""
    if "://" in uri:
        return False
    colon = uri.find(":")
    if colon < 0:
        return True
    slash = uri.find("/")
    return 0 <= slash < colon


def _repository_name(uri: str) -> str:
    base = uri.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return base.removesuffix(".git") or "repo"


class GitSource(Source):
    """A commit of a git repository (provider ``git``).

    ``provider_params["git_commit"]`` names the commit: a branch, a tag, a full or
    abbreviated commit id; absent, the repository's default branch. A shallow fetch
    of just that commit is tried first; when it cannot work (abbreviated id, a
    server refusing unadvertised commits) the whole repository is fetched.
    """

    provider_name = "git"
    #: seconds allowed for each fetch
    timeout: float = _git.NETWORK_TIMEOUT

    def __init__(
        self,
        provider: str,
        uri: str,
        dockerfile_path: str | None = None,
        provider_params: Mapping[str, Any] | None = None,
        tmpdir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(provider, uri, dockerfile_path, provider_params, tmpdir)
        #: the full id of the commit checked out; set by :meth:`get`
        self.commit_id: str | None = None

    @property
    def git_commit(self) -> str | None:
        """The commit asked for (``provider_params["git_commit"]``), None for the default."""
        commit = self.provider_params.get("git_commit")
        return commit if isinstance(commit, str) else None

    def get(self) -> str:
        if self._path is not None:
            return self._path
        self._check_not_cleaned()
        shown = redact_uri(self.uri)
        if self.uri.startswith("-"):
            raise SourceError(
                f"refusing git uri {shown!r}: it starts with '-' and could be read as a git option"
            )
        ref = self.git_commit
        if ref is not None:
            problem = _git.ref_problem(ref)
            if problem:
                raise SourceError(f"refusing git_commit {ref!r}: {problem}")
        fetch_uri = os.path.abspath(self.uri) if _is_local_path(self.uri) else self.uri

        root = self._new_root(_repository_name(self.uri))
        try:
            commit_id = self._fetch(root, fetch_uri, ref, shown)
        except BaseException:
            self._discard(root)
            raise
        self.commit_id = commit_id
        self._path = root
        logger.info("checked out %s of %s into %s", commit_id, shown, root)
        return root

    # -- steps -------------------------------------------------------------------

    def _git(self, root: str, *args: str, network: bool = False) -> _git.GitResult:
        context = f"fetching {redact_uri(self.uri)}" if network else f"in {root}"
        timeout = self.timeout if network else _git.LOCAL_TIMEOUT
        return _git.run_git(args, cwd=root, timeout=timeout, context=context)

    def _fetch(self, root: str, uri: str, ref: str | None, shown: str) -> str:
        result = self._git(root, "init", "-q")
        if not result.ok:
            raise SourceError(
                f"cannot create a git repository in {root}: {_git.git_error_line(result)}"
            )
        wanted = ref or "HEAD"
        logger.info("fetching %s of %s (shallow)", ref or "the default branch", shown)
        result = self._git(
            root, "fetch", "-q", "--depth", "1", "--no-tags", "--", uri, wanted, network=True
        )
        if result.ok:
            commit_id = self._resolve(root, "FETCH_HEAD")
            if commit_id is None:
                raise SourceError(f"{wanted!r} in {shown} does not name a commit")
        else:
            reason = _git.git_error_line(result)
            if (
                ref is not None
                and not _HEXISH.match(ref)
                and "couldn't find remote ref" in result.stderr.lower()
            ):
                raise SourceError(f"commit {ref!r} not found in {shown}")
            logger.info("shallow fetch from %s failed (%s); fetching all of it", shown, reason)
            commit_id = self._fetch_all(root, uri, ref, shown)

        result = self._git(root, "checkout", "-q", "--detach", commit_id)
        if not result.ok:
            raise SourceError(
                f"cannot check out {commit_id} of {shown}: {_git.git_error_line(result)}"
            )
        self._forget_uri(root)
        return commit_id

    def _fetch_all(self, root: str, uri: str, ref: str | None, shown: str) -> str:
        refspecs = ["+refs/heads/*:refs/remotes/origin/*"]
        if ref is None:
            refspecs.append("+HEAD:refs/remotes/origin/HEAD")
        result = self._git(root, "fetch", "-q", "--tags", "--", uri, *refspecs, network=True)
        if not result.ok:
            raise SourceError(f"cannot fetch git repository {shown}: {_git.git_error_line(result)}")
        if ref is None:
            candidates = ["refs/remotes/origin/HEAD"]
        elif ref.startswith("refs/"):
            candidates = [ref]
        else:
            candidates = [f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref]
        for candidate in candidates:
            commit_id = self._resolve(root, candidate, ref=ref, shown=shown)
            if commit_id is not None:
                return commit_id
        if ref is None:
            raise SourceError(f"{shown} has no default branch")
        raise SourceError(f"commit {ref!r} not found in {shown}")

    def _resolve(self, root: str, rev: str, ref: str | None = None, shown: str = "") -> str | None:
        """The full commit id *rev* names in the local repository, None if none."""
        result = self._git(root, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
        if result.ok:
            return result.stdout.strip()
        if ref is not None and "ambiguous" in result.stderr.lower():
            raise SourceError(f"commit {ref!r} is ambiguous in {shown}; give more of its id")
        return None

    def _forget_uri(self, root: str) -> None:
        """Drop the files where git recorded the URI (it may hold credentials)."""
        git_dir = os.path.join(root, ".git")
        try:
            os.unlink(os.path.join(git_dir, "FETCH_HEAD"))
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove FETCH_HEAD: %s", exc.strerror or exc)
        _rmtree(os.path.join(git_dir, "logs"))

    def get_vcs_info(self) -> VcsInfo | None:
        """``VcsInfo("git", uri without credentials, full commit id)``; fetches if needed."""
        _ = self.path  # fetch, which sets commit_id
        if self.commit_id is None:  # a subclass fetched without recording it
            return None
        return VcsInfo(
            vcs_type="git", vcs_url=_git.strip_credentials(self.uri), vcs_ref=self.commit_id
        )


# -- path ----------------------------------------------------------------------------


def _ignore_special_files(directory: str, names: list[str]) -> set[str]:
    """``copytree`` ignore hook: skip FIFOs, sockets and devices (copying them hangs/fails)."""
    skipped = set()
    for name in names:
        try:
            mode = os.lstat(os.path.join(directory, name)).st_mode
        except OSError:
            continue  # let the copy report it
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            logger.warning("not copying %s: not a regular file", os.path.join(directory, name))
            skipped.add(name)
    return skipped


def _drop_escaping_symlinks(root: str) -> None:
    """Remove every symlink under *root* whose target resolves outside *root*."""
    real_root = os.path.realpath(root)
    for directory, dirnames, filenames in os.walk(root):  # does not follow links
        for name in [*dirnames, *filenames]:
            link = os.path.join(directory, name)
            if not os.path.islink(link) or _is_within(os.path.realpath(link), real_root):
                continue
            logger.warning(
                "removing symlink %s -> %s from the copied path source: it points outside it",
                os.path.relpath(link, root),
                os.readlink(link),
            )
            os.unlink(link)


class PathSource(Source):
    """A local directory (provider ``path``, uri ``file:///abs/dir``), used as a copy.

    The copy keeps everything (``.git`` included); symlinks are copied as links and
    those resolving outside the directory are removed, so nothing from outside it
    reaches the build.
    """

    provider_name = "path"

    @property
    def source_path(self) -> str:
        """The absolute directory the uri names (:class:`SourceError` if malformed)."""
        shown = redact_uri(self.uri)
        path = self.uri
        if self.uri[:5].lower() == "file:":
            parts = urlsplit(self.uri)
            if parts.netloc not in ("", "localhost"):
                raise SourceError(
                    f"path source uri {shown!r} names a host; expected file:///absolute/path"
                )
            if parts.query or parts.fragment:
                raise SourceError(
                    f"path source uri {shown!r} has a query or fragment; "
                    "percent-encode '?' and '#' in paths"
                )
            path = unquote(parts.path)
        if not os.path.isabs(path):
            raise SourceError(
                f"path source uri {shown!r} must be file:///absolute/path or an absolute path"
            )
        return os.path.normpath(path)

    def get(self) -> str:
        if self._path is not None:
            return self._path
        self._check_not_cleaned()
        source_dir = self.source_path
        if not os.path.isdir(source_dir):
            what = "is not a directory" if os.path.exists(source_dir) else "does not exist"
            raise SourceError(f"path source {source_dir} {what}")
        real_source = os.path.realpath(source_dir)
        if _is_within(os.path.realpath(self.tmpdir), real_source):
            raise SourceError(
                f"source tmpdir {self.tmpdir} is inside path source {source_dir}; "
                "it cannot be copied into itself"
            )
        root = self._new_root(os.path.basename(real_source))
        logger.info("copying path source %s into %s", source_dir, root)
        try:
            shutil.copytree(
                source_dir,
                root,
                symlinks=True,
                ignore=_ignore_special_files,
                dirs_exist_ok=True,
            )
            _drop_escaping_symlinks(root)
        except shutil.Error as exc:
            self._discard(root)
            errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
            first = one_line(str(errors[0][2])) if errors else one_line(str(exc))
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise SourceError(f"cannot copy path source {source_dir}: {first}{more}") from None
        except OSError as exc:
            self._discard(root)
            raise SourceError(
                f"cannot copy path source {source_dir}: {one_line(str(exc))}"
            ) from None
        except BaseException:
            self._discard(root)
            raise
        self._path = root
        return root


# -- factory -----------------------------------------------------------------------

_SOURCE_CLASSES: Mapping[str, type[Source]] = {"git": GitSource, "path": PathSource}


def get_source_instance_for(
    source: Mapping[str, Any] | SourceSpec, tmpdir: str | os.PathLike[str] | None = None
) -> Source:
    """The :class:`Source` for a ``source`` mapping (validated) or a :class:`SourceSpec`.

    A wrong mapping raises :class:`~atomic_reactor.errors.InvalidSource` (a
    ``ValueError``, as in 1.6). The mapping may carry 1.6's ``tmpdir`` key: the
    directory to fetch into, as the ``tmpdir`` argument (which wins when both are given).
    """
    if isinstance(source, Mapping) and "tmpdir" in source:
        source = dict(source)
        given = source.pop("tmpdir")
        if given is not None and not isinstance(given, (str, os.PathLike)):
            raise InvalidSource(f"source 'tmpdir' must be a path, got {_type_name(given)}")
        if tmpdir is None:
            tmpdir = given
    spec = source if isinstance(source, SourceSpec) else SourceSpec.from_dict(source)
    cls = _SOURCE_CLASSES[spec.provider]
    return cls(
        spec.provider,
        spec.uri,
        dockerfile_path=spec.dockerfile_path,
        provider_params=dict(spec.provider_params),
        tmpdir=tmpdir,
    )
