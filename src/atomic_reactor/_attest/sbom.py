"""A CycloneDX 1.5 JSON SBOM of an image: its packages and its base image.

Made with ``cyclonedx-python-lib``. Each package is a ``library`` component with a
package URL (``pkg:deb/debian/bash@5.2.15-2+b7?arch=amd64&distro=debian-12``,
``pkg:rpm/…``, ``pkg:apk/…``) and the package manager and architecture as
properties; the image is the document's ``metadata.component`` (a ``container``,
version = its manifest digest) and depends on every package and on the base image
(another ``container`` component). The same inputs give the same bytes: the serial
number is derived from the image digest and the timestamp is given (a reproducible
build passes SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL

from atomic_reactor import __version__
from atomic_reactor._attest.packages import ImagePackages
from atomic_reactor._reference import ImageName
from atomic_reactor.plugins.all_rpm_packages import InstalledPackage

__all__ = ["SBOM_MEDIA_TYPE", "make_sbom", "package_url"]

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
_PURL_TYPES = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}
_PROPERTY = "atomic-reactor:"


def full_version(package: InstalledPackage, manager: str) -> str:
    """The version as the package manager writes it (``1:2.36-9+deb12u4``, ``5.2-1.el9``)."""
    version = package.version
    if package.release:
        version = f"{version}-{package.release}"
    if package.epoch and manager == "dpkg":
        version = f"{package.epoch}:{version}"
    return version


def package_url(package: InstalledPackage, manager: str, distro_id: str,
                distro_version: str) -> str:
    qualifiers: dict[str, str] = {}
    if package.arch:
        qualifiers["arch"] = package.arch
    if package.epoch and manager == "rpm":
        qualifiers["epoch"] = package.epoch
    if distro_id:
        qualifiers["distro"] = f"{distro_id}-{distro_version}" if distro_version else distro_id
    namespace = distro_id or {"apk": "alpine"}.get(manager)
    version = full_version(package, manager)
    if manager == "rpm":  # the epoch is a qualifier
        version = f"{package.version}-{package.release}" if package.release else package.version
    return str(PackageURL(_PURL_TYPES[manager], namespace, package.name, version,
                          qualifiers or None))


def _image_component(image: str, digest: str | None, ref: str) -> Component:
    name = ImageName.parse(image)
    repository = name.to_str(tag=False)
    purl = None
    if digest:
        qualifiers = {"repository_url": repository}
        if name.tag:
            qualifiers["tag"] = name.tag
        purl = PackageURL("oci", None, repository.rsplit("/", 1)[-1], digest, qualifiers)
    return Component(type=ComponentType.CONTAINER, name=repository,
                     version=digest or name.tag or "", purl=purl, bom_ref=ref)


def make_sbom(packages: ImagePackages, *, image: str, image_digest: str | None,
              base_image: str | None, base_digest: str | None, timestamp: datetime) -> bytes:
    """The SBOM document (JSON bytes)."""
    seed = f"atomic-reactor sbom {image} {image_digest or ''}"
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, seed))
    bom.metadata.timestamp = timestamp
    bom.metadata.tools.components.add(Component(
        type=ComponentType.APPLICATION, name="atomic-reactor", version=__version__))
    subject = _image_component(image, image_digest, "image")
    if packages.architecture:
        subject.properties.add(Property(name=_PROPERTY + "architecture",
                                        value=packages.architecture))
    if packages.os.pretty_name:
        subject.properties.add(Property(name=_PROPERTY + "os", value=packages.os.pretty_name))
    bom.metadata.component = subject
    depends: list[Component] = []
    if base_image:
        base = _image_component(base_image, base_digest, "base-image")
        base.properties.add(Property(name=_PROPERTY + "role", value="base-image"))
        bom.components.add(base)
        depends.append(base)
    manager = packages.manager
    if manager is not None:
        for package in packages.packages:
            purl = package_url(package, manager, packages.os.id, packages.os.version_id)
            component = Component(
                type=ComponentType.LIBRARY, name=package.name,
                version=full_version(package, manager), purl=PackageURL.from_string(purl),
                bom_ref=purl)
            component.properties.add(Property(name=_PROPERTY + "package-manager",
                                              value=manager))
            if package.arch:
                component.properties.add(Property(name=_PROPERTY + "architecture",
                                                  value=package.arch))
            bom.components.add(component)
            depends.append(component)
    bom.register_dependency(subject, depends)
    return JsonV1Dot5(bom).output_as_string(indent=None).encode()
