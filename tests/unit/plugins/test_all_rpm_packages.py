"""Unit tests of ``all_rpm_packages``: the parsers of rpm, dpkg and apk output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.all_rpm_packages import (
    RPM_QUERY_FORMAT,
    RPM_TAGS,
    AllRpmPackagesPlugin,
    InstalledPackage,
    parse_apk,
    parse_dpkg,
    parse_rpm,
)
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)

SIGNED = ("RSA/SHA256, Tue 14 Feb 2023 10:00:00 AM UTC, Key ID 199E2F91FD431D51")
RPM_OUTPUT = [
    # NAME;VERSION;RELEASE;ARCH;EPOCH;SIZE;SIGMD5;BUILDTIME;SIGPGP;SIGGPG;RSAHEADER;DSAHEADER
    f"bash;5.2.15;3.fc38;x86_64;(none);8093410;0123456789abcdef0123456789abcdef;1676368800;"
    f"(none);(none);{SIGNED};(none)\n",
    "tzdata;2023c;1.fc38;noarch;2;1883455;fedcba9876543210fedcba9876543210;1680000000;"
    "(none);(none);(none);(none)\n",
    "gpg-pubkey;fd431d51;4ae0493b;(none);(none);0;(none);1256212795;"
    "(none);(none);(none);(none)\n",
    "warning: some rpm noise on stdout\n",
    "\n",
]


def test_query_format_is_1_6_compatible() -> None:
    assert RPM_QUERY_FORMAT.startswith(
        "%{NAME};%{VERSION};%{RELEASE};%{ARCH};%{EPOCH};%{SIZE};%{SIGMD5};%{BUILDTIME};"
        "%{SIGPGP:pgpsig};%{SIGGPG:pgpsig}")
    assert RPM_QUERY_FORMAT.endswith("\n")
    assert len(RPM_TAGS) == 12


def test_parse_rpm() -> None:
    packages = parse_rpm(RPM_OUTPUT)
    assert [p.name for p in packages] == ["bash", "tzdata"]
    bash, tzdata = packages
    assert bash == InstalledPackage(
        name="bash", version="5.2.15", release="3.fc38", arch="x86_64", epoch=None,
        size=8093410, sigmd5="0123456789abcdef0123456789abcdef", signature=SIGNED,
        key_id="199e2f91fd431d51", buildtime=1676368800)
    assert bash.nvra == "bash-5.2.15-3.fc38.x86_64"
    assert tzdata.epoch == "2"
    assert tzdata.signature is None and tzdata.key_id is None


def test_parse_rpm_keeps_gpg_pubkey_when_asked() -> None:
    names = [p.name for p in parse_rpm(RPM_OUTPUT, ignore_gpg_pubkey=False)]
    assert names == ["bash", "tzdata", "gpg-pubkey"]
    pubkey = parse_rpm(RPM_OUTPUT, ignore_gpg_pubkey=False)[2]
    assert pubkey.arch is None and pubkey.sigmd5 is None


def test_parse_rpm_v3_signature() -> None:
    line = ("old;1;1;i386;(none);1;ab;1;DSA/SHA1, Mon 01 Jan 2007, Key ID 5326810137017186;"
            "(none);(none);(none)\n")
    (package,) = parse_rpm([line])
    assert package.key_id == "5326810137017186"


DPKG_OUTPUT = [
    "bash\t5.2.15-2+b2\tamd64\tii \t7164\n",
    "libc6\t2.36-9+deb12u4\tamd64\tii \t12985\n",
    "tzdata\t2024a-0+deb12u1\tall\thi \t\n",
    "sysvinit-utils\t3.06-4\tamd64\trc \t100\n",  # removed, config files left
    "half\t1.0\tamd64\tiU \t1\n",  # unpacked, not configured
    "e2fsprogs\t1:1.47.0-2\tamd64\tii \t1500\n",
    "native\t1.0\tall\tii \t4\n",
    "broken line\n",
]


def test_parse_dpkg() -> None:
    packages = {p.name: p for p in parse_dpkg(DPKG_OUTPUT)}
    assert sorted(packages) == ["bash", "e2fsprogs", "libc6", "native", "tzdata"]
    assert packages["bash"] == InstalledPackage(name="bash", version="5.2.15", release="2+b2",
                                                arch="amd64", size=7164 * 1024)
    assert (packages["e2fsprogs"].epoch, packages["e2fsprogs"].version,
            packages["e2fsprogs"].release) == ("1", "1.47.0", "2")
    assert packages["native"].release is None
    assert packages["tzdata"].size is None and packages["tzdata"].arch == "all"
    assert packages["libc6"].nvra == "libc6-2.36-9+deb12u4.amd64"


APK_DB = [
    "C:Q1abc=\n", "P:musl\n", "V:1.2.4-r2\n", "A:x86_64\n", "I:622592\n",
    "T:the musl c library\n", "R:lib/libc.musl-x86_64.so.1\n", "\n",
    "P:scanelf\n", "V:1.3.7-r1\n", "A:x86_64\n", "\n", "\n",
    "P:odd-version\n", "V:20230101\n", "\n",
    "V:1.0\n", "A:x86_64\n", "\n",  # no name: not a package record
    "P:last\n", "V:2.0-r0\n",  # no trailing blank line
]


def test_parse_apk() -> None:
    packages = parse_apk(APK_DB)
    assert [(p.name, p.version, p.release, p.arch, p.size, p.checksum) for p in packages] == [
        ("musl", "1.2.4", "r2", "x86_64", 622592, "Q1abc="),
        ("scanelf", "1.3.7", "r1", "x86_64", None, None),
        ("odd-version", "20230101", None, None, None, None),
        ("last", "2.0", "r0", None, None, None),
    ]


def test_arguments(workflow: DockerBuildWorkflow) -> None:
    with pytest.raises(PluginConfigError, match="takes no argument 'query_format'"):
        validate_plugin_args("all_rpm_packages", AllRpmPackagesPlugin, {"query_format": "x"})
    with pytest.raises(PluginConfigError) as caught:
        AllRpmPackagesPlugin(workflow.tasker, workflow, timeout=0)
    assert caught.value.argument == "timeout"
    plugin = AllRpmPackagesPlugin(workflow.tasker, workflow, image_id="sha256:1")
    assert plugin.image_to_query == "sha256:1"
    assert plugin.ignore_autogenerated_gpg_keys is True
