"""``all_rpm_packages`` against real images: rpm (Debian + a real rpm), dpkg, apk, none."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.plugins.all_rpm_packages import RPM_QUERY_FORMAT
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage
from tests.support.images import run_in
from tests.support.tracker import Tracker

if TYPE_CHECKING:
    from tests.integration.plugins.debian_fixtures import PushedTestImage

pytest_plugins = ["tests.integration.plugins.debian_fixtures"]

KEY = "all_rpm_packages"

SPEC = """\
Name: art-hello
Version: 1.2.3
Release: 4
Summary: atomic-reactor test package
License: MIT
BuildArch: noarch

%description
A file for atomic-reactor's tests.

%install
mkdir -p %{buildroot}/usr/share/art-hello
echo hello > %{buildroot}/usr/share/art-hello/hello.txt

%files
/usr/share/art-hello/hello.txt
"""

APK_DB = """\
C:Q1n7fHtKfuxXVyS6Gz0pW7DBzy4q8=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation

C:Q1QjYNc8iOqUtEBfAQvEz6L2r7BGc=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
S:1548
I:1
T:busybox ash /bin/sh
"""


def _build(context: Path, registry_address: str, args: dict[str, Any] | None = None) -> Any:
    return build_image_here(
        source=path_source(context),
        image=unique("art-test-rpmqa"),
        parent_registry=registry_address,
        postbuild_plugins=[{"name": KEY, "args": args or {}}],
    )


def _run(tasker: DockerTasker, image: str, argv: list[str]) -> str:
    done = run_in(tasker, image, argv[1:], entrypoint=[argv[0]])
    assert done.code == 0, done.stderr
    return done.stdout


def _left_containers(tracker: Tracker) -> set[str]:
    """Containers made since the test began that still exist (the plugin's query
    containers must all be gone)."""
    before = tracker.last_snapshot
    assert before is not None
    return set(tracker.state().container_ids - before.container_ids)


@pytest.fixture(scope="module")
def hello_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny noarch rpm built on the host with rpmbuild."""
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "SPECS").mkdir()
    (top / "SPECS" / "art-hello.spec").write_text(SPEC)
    result = subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(top / "SPECS" / "art-hello.spec")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return top / "RPMS" / "noarch" / "art-hello-1.2.3-4.noarch.rpm"


def test_rpm_database_of_the_image(engine_cleanup: Tracker, debian_rpm_image: PushedTestImage,
                                   hello_rpm: Path, tmp_path: Path) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {debian_rpm_image.repo}
        COPY art-hello.rpm /tmp/art-hello.rpm
        RUN rpm -i --nodeps /tmp/art-hello.rpm && rm /tmp/art-hello.rpm
        """)
    (context / "art-hello.rpm").write_bytes(hello_rpm.read_bytes())
    results = _build(context, debian_rpm_image.registry.address)
    assert not results.is_failed(), results.error

    listed = results.plugin_results["postbuild"][KEY]
    assert listed["manager"] == "rpm"
    assert listed["skipped"] is None
    assert listed["image_id"] == results.image_id
    # the image's rpm database holds exactly the package installed above
    assert [p["name"] for p in listed["packages"]] == ["art-hello"]
    package = listed["packages"][0]
    expected = subprocess.run(["rpm", "-qp", "--qf", RPM_QUERY_FORMAT, str(hello_rpm)],
                              capture_output=True, text=True, check=True).stdout.strip()
    _, version, release, arch, epoch, size, sigmd5, buildtime = expected.split(";")[:8]
    assert (package["version"], package["release"], package["arch"]) == (version, release, arch)
    assert (version, release, arch) == ("1.2.3", "4", "noarch")
    assert package["epoch"] is None and epoch == "(none)"
    assert package["size"] == int(size)
    assert package["sigmd5"] == sigmd5 and len(sigmd5) == 32
    assert package["buildtime"] == int(buildtime)
    assert package["signature"] is None  # built unsigned
    # the query containers are gone
    assert _left_containers(engine_cleanup) == set()


def test_rpm_without_packages_falls_back_to_dpkg(engine_cleanup: Tracker,
                                                 debian_rpm_image: PushedTestImage,
                                                 tmp_path: Path) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {debian_rpm_image.repo}
        LABEL purpose=rpm-installed-but-empty-database
        """)
    results = _build(context, debian_rpm_image.registry.address)
    assert not results.is_failed(), results.error
    listed = results.plugin_results["postbuild"][KEY]
    assert listed["manager"] == "dpkg"
    names = {p["name"] for p in listed["packages"]}
    assert {"rpm", "dpkg", "libc6"} <= names
    assert _left_containers(engine_cleanup) == set()


def test_dpkg_database_of_a_debian_image(tasker: DockerTasker, engine_cleanup: Tracker,
                                         debian_base_image: PushedTestImage,
                                         tmp_path: Path) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {debian_base_image.repo}
        RUN echo built > /etc/art-test
        """)
    results = _build(context, debian_base_image.registry.address)
    assert not results.is_failed(), results.error
    listed = results.plugin_results["postbuild"][KEY]
    assert listed["manager"] == "dpkg"
    packages = {p["name"]: p for p in listed["packages"]}

    image = str(results.image_id)
    installed = _run(tasker, image, ["dpkg-query", "-W", "-f",
                                     "${db:Status-Abbrev} ${Package}\n"]).splitlines()
    assert sorted(packages) == sorted(line.split()[1] for line in installed
                                      if line.startswith("ii"))
    full_version = _run(tasker, image, ["dpkg-query", "-W", "-f", "${Version}", "libc6"])
    libc = packages["libc6"]
    assert f"{libc['version']}-{libc['release']}" == full_version
    assert libc["arch"] == _run(tasker, image, ["dpkg", "--print-architecture"]).strip()
    assert libc["size"] and libc["size"] > 1024 * 1024
    assert "rpm" not in packages
    assert _left_containers(engine_cleanup) == set()


def test_apk_database(base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        COPY installed /lib/apk/db/installed
        """, {"installed": APK_DB})
    results = _build(context, base_image.registry.address)
    assert not results.is_failed(), results.error
    listed = results.plugin_results["postbuild"][KEY]
    assert listed["manager"] == "apk"
    assert [(p["name"], p["version"], p["release"], p["arch"], p["size"], p["checksum"])
            for p in listed["packages"]] == [
        ("musl", "1.2.4", "r2", "x86_64", 622592, "Q1n7fHtKfuxXVyS6Gz0pW7DBzy4q8="),
        ("busybox-binsh", "1.36.1", "r15", "x86_64", 1, "Q1QjYNc8iOqUtEBfAQvEz6L2r7BGc="),
    ]


def test_image_without_a_package_database_is_a_recorded_skip(engine_cleanup: Tracker,
                                                              base_image: BaseImage,
                                                              tmp_path: Path) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo hi > /hello
        """)
    results = _build(context, base_image.registry.address)
    assert not results.is_failed(), results.error
    listed = results.plugin_results["postbuild"][KEY]
    assert listed["manager"] is None
    assert listed["packages"] == []
    assert "no rpm, dpkg or apk" in listed["skipped"]
    assert _left_containers(engine_cleanup) == set()


def test_broken_rpm_database_fails_the_build(debian_rpm_image: PushedTestImage,
                                             tmp_path: Path) -> None:
    """rpm is there but cannot read its database, and there is no other database."""
    script = textwrap.dedent("""\
        rm -rf /var/lib/dpkg/status /root/.rpmdb
        mkdir -p /root/.rpmdb
        echo 'not a database' > /root/.rpmdb/rpmdb.sqlite
        """)
    context = write_context(tmp_path / "src", f"""
        FROM {debian_rpm_image.repo}
        COPY break.sh /break.sh
        RUN sh /break.sh
        """, {"break.sh": script})
    results = _build(context, debian_rpm_image.registry.address)
    assert results.is_failed()
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert "rpm -qa exited with" in results.error["message"]


def test_explicit_image_id(engine_cleanup: Tracker, debian_base_image: PushedTestImage,
                           base_image: BaseImage, tmp_path: Path) -> None:
    """image_id names another image than the one built: that one is listed."""
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\n")
    results = _build(context, base_image.registry.address,
                     {"image_id": debian_base_image.image_id})
    assert not results.is_failed(), results.error
    listed = results.plugin_results["postbuild"][KEY]
    assert listed["image_id"] == debian_base_image.image_id
    assert listed["manager"] == "dpkg"
    assert _left_containers(engine_cleanup) == set()
