"""``all_rpm_packages``: list the packages installed in the built image."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._engine.base import ContainerSpec
from atomic_reactor._git import one_line
from atomic_reactor.errors import AtomicReactorError, EngineError, PluginConfigError
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AllRpmPackagesPlugin", "InstalledPackage", "PackageList"]

#: the rpm tags queried, in this order (atomic-reactor 1.6's plus the header signatures)
RPM_TAGS = ("NAME", "VERSION", "RELEASE", "ARCH", "EPOCH", "SIZE", "SIGMD5", "BUILDTIME",
            "SIGPGP:pgpsig", "SIGGPG:pgpsig", "RSAHEADER:pgpsig", "DSAHEADER:pgpsig")
RPM_SEPARATOR = ";"
RPM_QUERY_FORMAT = RPM_SEPARATOR.join(f"%{{{tag}}}" for tag in RPM_TAGS) + "\n"
DPKG_QUERY_FORMAT = ("${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\t"
                     "${Installed-Size}\n")
APK_DB = "/lib/apk/db/installed"
_NONE = "(none)"
_KEY_ID = re.compile(r"Key ID ([0-9A-Fa-f]+)")
# what the engine says when the executable of a container is not in the image
_MISSING_EXECUTABLE = ("executable file not found", "no such file or directory",
                       "not found in $path")


@dataclass(frozen=True)
class InstalledPackage:
    """One installed package.

    For rpm every field comes from the rpm database (``signature`` is the first
    signature found, ``key_id`` its signing key). For dpkg, ``version`` is the
    upstream version, ``release`` the Debian revision and ``epoch`` the epoch; for
    apk, ``release`` is the ``-rN`` suffix and ``checksum`` the database's ``C:``.
    """

    name: str
    version: str
    release: str | None
    arch: str | None
    epoch: str | None = None
    size: int | None = None
    sigmd5: str | None = None
    signature: str | None = None
    key_id: str | None = None
    buildtime: int | None = None
    checksum: str | None = None

    @property
    def nvra(self) -> str:
        text = f"{self.name}-{self.version}"
        if self.release:
            text += f"-{self.release}"
        return f"{text}.{self.arch}" if self.arch else text


@dataclass(frozen=True)
class PackageList:
    """The packages of an image, and which package database they came from.

    ``manager`` is ``rpm``, ``dpkg`` or ``apk``; when no database was found (or all
    were empty) ``manager`` is None, ``packages`` empty and ``skipped`` says why.
    """

    image_id: str
    manager: str | None
    packages: tuple[InstalledPackage, ...]
    skipped: str | None = None


class _Absent(Exception):
    """The tool is not in the image."""


def _value(text: str) -> str | None:
    text = text.strip()
    return None if not text or text == _NONE else text


def _int(text: str) -> int | None:
    value = _value(text)
    return int(value) if value is not None and value.isdigit() else None


def parse_rpm(lines: Sequence[str], ignore_gpg_pubkey: bool = True) -> list[InstalledPackage]:
    """Packages from ``rpm -qa --qf RPM_QUERY_FORMAT`` output."""
    packages: list[InstalledPackage] = []
    for line in lines:
        fields = line.rstrip("\r\n").split(RPM_SEPARATOR)
        if len(fields) != len(RPM_TAGS) or not fields[0]:
            continue
        values = dict(zip(RPM_TAGS, fields, strict=True))
        name = values["NAME"]
        if ignore_gpg_pubkey and name == "gpg-pubkey":
            continue
        signature = next((sig for sig in (_value(values[tag]) for tag in RPM_TAGS[8:])
                          if sig is not None), None)
        match = _KEY_ID.search(signature or "")
        packages.append(InstalledPackage(
            name=name,
            version=values["VERSION"],
            release=_value(values["RELEASE"]),
            arch=_value(values["ARCH"]),
            epoch=_value(values["EPOCH"]),
            size=_int(values["SIZE"]),
            sigmd5=_value(values["SIGMD5"]),
            signature=signature,
            key_id=match.group(1).lower() if match else None,
            buildtime=_int(values["BUILDTIME"]),
        ))
    return packages


def split_debian_version(full: str) -> tuple[str | None, str, str | None]:
    """``[epoch:]version[-release]`` (a Debian package version) -> its three parts."""
    epoch = None
    rest = full
    if ":" in rest:
        epoch, rest = rest.split(":", 1)
    version, release = rest, None
    if "-" in rest:
        version, release = rest.rsplit("-", 1)
    return epoch, version, release


def parse_dpkg(lines: Sequence[str]) -> list[InstalledPackage]:
    """Installed packages from ``dpkg-query -W -f DPKG_QUERY_FORMAT`` output."""
    packages: list[InstalledPackage] = []
    for line in lines:
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 5 or not fields[0]:
            continue
        name, full_version, arch, status, size = fields
        if len(status) < 2 or status[1] != "i":  # not (fully) installed
            continue
        epoch, version, release = split_debian_version(full_version)
        kib = _int(size)
        packages.append(InstalledPackage(name=name, version=version, release=release,
                                         arch=arch or None, epoch=epoch,
                                         size=kib * 1024 if kib is not None else None))
    return packages


def parse_apk(lines: Sequence[str]) -> list[InstalledPackage]:
    """Packages from apk's database (``/lib/apk/db/installed``)."""
    packages: list[InstalledPackage] = []
    record: dict[str, str] = {}

    def flush() -> None:
        name = record.get("P")
        full = record.get("V")
        if name and full:
            version, release = full, None
            if re.search(r"-r\d+$", full):
                version, release = full.rsplit("-", 1)
            packages.append(InstalledPackage(name=name, version=version, release=release,
                                             arch=record.get("A"), size=_int(record.get("I", "")),
                                             checksum=record.get("C")))
        record.clear()

    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            flush()
            continue
        if len(line) > 2 and line[1] == ":" and line[0] not in record:
            record[line[0]] = line[2:]
    flush()
    return packages


class AllRpmPackagesPlugin(PostBuildPlugin):
    """List the packages installed in the built image by running ``rpm -qa`` in a
    container of it (atomic-reactor 1.6's query: name, version, release, arch,
    epoch, size, sigmd5, build time and signature per package). Images without an
    rpm database get their package list from ``dpkg-query`` (Debian and
    derivatives) or from apk's database (Alpine) instead; an image with none of
    these is a recorded skip. The containers run without network as root and are
    always removed.

    Result: a :class:`PackageList` (image id, the package manager used, the
    packages; ``skipped`` says why there is no list).
    """

    key = "all_rpm_packages"
    per_platform = True
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 image_id: str | None = None,
                 ignore_autogenerated_gpg_keys: bool = True, timeout: int = 600) -> None:
        """
        :param image_id: the image to inspect (default: the image this build built)
        :param ignore_autogenerated_gpg_keys: leave out rpm's ``gpg-pubkey`` pseudo-packages
        :param timeout: seconds each query container may run
        """
        super().__init__(tasker, workflow)
        if timeout <= 0:
            raise PluginConfigError(f"plugin {self.key}: argument timeout must be positive",
                                    plugin=self.key, argument="timeout")
        self.image_to_query = image_id or None
        self.ignore_autogenerated_gpg_keys = ignore_autogenerated_gpg_keys
        self.timeout = timeout

    def _query(self, image_id: str, argv: Sequence[str]) -> tuple[int, list[str], str]:
        """Run ``argv`` in a container of the image: exit code, stdout lines, all output.

        Raises :class:`_Absent` when the executable is not in the image.
        """
        spec = ContainerSpec(image=image_id, entrypoint=[argv[0]], command=list(argv[1:]),
                             user="0", network_mode="none",
                             labels={"atomic-reactor.plugin": self.key})
        try:
            container_id = self.tasker.run_container(spec)
        except EngineError as exc:
            if any(marker in str(exc).lower() for marker in _MISSING_EXECUTABLE):
                raise _Absent(argv[0]) from None
            raise
        try:
            code = self.tasker.wait_container(container_id, timeout=self.timeout)
            stdout = list(self.tasker.logs(container_id, stderr=False, stream=False))
            output = "".join(self.tasker.logs(container_id, stderr=True, stream=False))
        finally:
            try:
                self.tasker.remove_container(container_id, force=True)
            except AtomicReactorError as exc:
                self.log.warning("could not remove container %s: %s", container_id[:12], exc)
        return code, stdout, output

    def run(self) -> PackageList:
        image_id = self.image_to_query or self.image_id
        ignore = self.ignore_autogenerated_gpg_keys
        managers: list[tuple[str, list[str], Callable[[list[str]], list[InstalledPackage]]]] = [
            ("rpm", ["rpm", "-qa", "--qf", RPM_QUERY_FORMAT],
             lambda lines: parse_rpm(lines, ignore_gpg_pubkey=ignore)),
            ("dpkg", ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT], parse_dpkg),
            ("apk", ["cat", APK_DB], parse_apk),
        ]
        found: list[str] = []
        failures: list[str] = []
        for manager, argv, parse in managers:
            try:
                code, stdout, output = self._query(image_id, argv)
            except _Absent:
                self.log.debug("%s: %s is not in the image", manager, argv[0])
                continue
            if code != 0:
                if manager == "apk":  # cat of a missing file: no apk database
                    continue
                if "busybox" in output.lower():  # busybox's rpm applet: no rpm database
                    self.log.debug("%s: %s is busybox's applet", manager, argv[0])
                    continue
                problem = f"{' '.join(argv[:2])} exited with {code}: {one_line(output)[-300:]}"
                self.log.warning("%s", problem)
                failures.append(problem)
                continue
            found.append(manager)
            packages = parse(stdout)
            if packages:
                self.log.info("%d packages installed (from %s)", len(packages), manager)
                return PackageList(image_id=image_id, manager=manager,
                                   packages=tuple(packages))
            self.log.info("%s lists no packages", manager)
        if failures:
            raise AtomicReactorError(f"{self.key}: cannot list the packages of image "
                                     f"{image_id[:19]}: {failures[0]}")
        reason = (f"{' and '.join(found)} list no packages" if found
                  else "the image has no rpm, dpkg or apk package database")
        self.log.info("no package list: %s", reason)
        return PackageList(image_id=image_id, manager=None, packages=(), skipped=reason)
