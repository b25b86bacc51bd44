"""The Debian mirror the debootstrap test image uses comes from the machine's apt
sources (tests/support/debian.py), not from a host written into the tests."""

from __future__ import annotations

from pathlib import Path

from tests.support.debian import apt_mirror

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://mirror.example.org/debian/
 http://second.example.org/debian
Suites: bookworm bookworm-updates
Components: main
"""


def _apt(tmp_path: Path, sources_list: str | None = None,
         files: dict[str, str] | None = None) -> Path:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (apt / "sources.list").write_text(sources_list)
    for name, text in (files or {}).items():
        (apt / "sources.list.d" / name).write_text(text)
    return apt


def test_deb822_sources_give_the_first_release_mirror(tmp_path: Path) -> None:
    apt = _apt(tmp_path, files={"debian.sources": DEB822})
    assert apt_mirror(apt) == "http://mirror.example.org/debian"


def test_sources_list_one_line_format(tmp_path: Path) -> None:
    apt = _apt(tmp_path, """\
# deb http://commented.example.org/debian bookworm main
deb-src http://src.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://secure.example.org/debian-security bookworm-security main
deb [ trusted=yes ] http://local.example.org:8080/debian bookworm main contrib
""")  # noqa: E501
    assert apt_mirror(apt) == "http://local.example.org:8080/debian"


def test_sources_list_comes_before_the_directory(tmp_path: Path) -> None:
    apt = _apt(tmp_path, "deb http://first.example.org/debian bookworm main\n",
               {"debian.sources": DEB822, "other.list":
                "deb http://other.example.org/debian bookworm main\n"})
    assert apt_mirror(apt) == "http://first.example.org/debian"


def test_no_usable_source_leaves_debootstrap_its_default(tmp_path: Path) -> None:
    assert apt_mirror(_apt(tmp_path)) is None
    apt = _apt(tmp_path / "2", "deb http://x.example.org/debian-security bookworm-security main\n",
               {"off.sources": "Types: deb\nURIs: http://y.example.org/debian\n"
                               "Suites: bookworm\nEnabled: no\n",
                "disabled.list.disabled-by-farm": "deb http://z.example.org/debian bookworm\n"})
    assert apt_mirror(apt) is None
