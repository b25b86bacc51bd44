"""The host side of ``--method privileged --engine buildah``, over a fake engine: what
the build container gets (environment, binds, build json, secrets, the registries
drop-in), what comes back, and what is refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._buildcontainer import run as _container_build
from atomic_reactor._buildcontainer.run import (
    CONTAINER_REGISTRIES_DROPIN,
    CONTAINER_SHARE,
    DOCKER_SOCKET,
    run_in_build_container,
)
from atomic_reactor._engine.base import ContainerSpec
from atomic_reactor._request import BuildRequest
from atomic_reactor._results import BuildResults
from atomic_reactor.errors import EngineConfigError
from tests.support.fake_engine import FakeEngine, fake_tasker

BUILD_IMAGE = "ar-privileged:1"


def _request(**extra: object) -> BuildRequest:
    return BuildRequest.from_mapping({
        "source": {"provider": "git", "uri": "https://example.org/x.git"},
        "image": "x:1", "build_image": BUILD_IMAGE, **extra})


def _host_path(spec: ContainerSpec, container_path: str) -> Path:
    """The host path bound at ``container_path`` (or under the shared directory)."""
    for host, (inside, _) in spec.binds.items():
        if inside == container_path:
            return Path(host)
    for host, (inside, _) in spec.binds.items():
        if inside == CONTAINER_SHARE and container_path.startswith(CONTAINER_SHARE + "/"):
            return Path(host, container_path[len(CONTAINER_SHARE) + 1:])
    raise AssertionError(f"{container_path} is not bound: {spec.binds}")


class _Inside:
    """What the build container would see; writes the results it would write."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def __call__(self, spec: ContainerSpec) -> tuple[int, list[str]]:
        share = _host_path(spec, CONTAINER_SHARE)
        build_json = json.loads((share / "build.json").read_text())
        self.seen.update(spec=spec, share=share, build_json=build_json, secrets={})
        for entry in build_json.get("secrets") or []:
            path = _host_path(spec, entry["src"])
            self.seen["secrets"][entry["id"]] = (path.read_text(),
                                                 stat.S_IMODE(path.stat().st_mode))
        with pytest.raises(AssertionError):
            _host_path(spec, CONTAINER_REGISTRIES_DROPIN)  # only bound when there are any
        results = BuildResults(image=build_json["image"], image_id="sha256:" + "1" * 64,
                               engine="buildah")
        (share / "results.json").write_text(results.to_json())
        return 0, ["STEP 1/1: FROM scratch"]


class _InsideWithRegistries(_Inside):
    def __call__(self, spec: ContainerSpec) -> tuple[int, list[str]]:
        self.seen["dropin"] = _host_path(spec, CONTAINER_REGISTRIES_DROPIN).read_text()
        self.seen["dropin_mode"] = spec.binds[str(_host_path(spec, CONTAINER_REGISTRIES_DROPIN))]
        share = _host_path(spec, CONTAINER_SHARE)
        build_json = json.loads((share / "build.json").read_text())
        results = BuildResults(image=build_json["image"], engine="buildah")
        (share / "results.json").write_text(results.to_json())
        return 0, []


def _engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(BUILD_IMAGE)
    return engine


def test_privileged_buildah_container_gets_engine_and_secrets_as_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    token = tmp_path / "token"
    token.write_text("file-secret-value\n")
    monkeypatch.setenv("AR_UNIT_SECRET", "env-secret-value")
    engine = _engine()
    inside = _Inside()
    engine.container_script = inside
    results = run_in_build_container("privileged", _request(
        engine="buildah", secrets=[f"id=tok,src={token}", "id=var,env=AR_UNIT_SECRET"]),
        tasker=fake_tasker(engine))
    results.raise_for_status()
    assert results.engine == "buildah" and results.return_code == 0
    spec: ContainerSpec = inside.seen["spec"]
    assert spec.environment["ATOMIC_REACTOR_ENGINE"] == "buildah"
    assert spec.privileged
    assert DOCKER_SOCKET not in {inside_path for inside_path, _ in spec.binds.values()}
    assert spec.network_mode != "host"
    build_json = inside.seen["build_json"]
    assert build_json["engine"] == "buildah"
    # the host's file and variable reach the container as private files in the share
    assert [entry["id"] for entry in build_json["secrets"]] == ["tok", "var"]
    assert all(set(entry) == {"id", "src"} and entry["src"].startswith(CONTAINER_SHARE + "/")
               for entry in build_json["secrets"])
    assert inside.seen["secrets"] == {"tok": ("file-secret-value\n", 0o600),
                                      "var": ("env-secret-value", 0o600)}
    assert "env-secret-value" not in json.dumps(build_json)
    # and they went with the shared directory
    assert not inside.seen["share"].exists()


def test_relayed_registries_are_plain_http_for_buildah(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    engine = _engine()
    inside = _InsideWithRegistries()
    engine.container_script = inside
    run_in_build_container("privileged", _request(
        engine="buildah", parent_registry="127.0.0.1:5000",
        target_registries=["localhost:5001", "registry.example:443"]),
        tasker=fake_tasker(engine)).raise_for_status()
    dropin = inside.seen["dropin"]
    assert inside.seen["dropin_mode"] == (CONTAINER_REGISTRIES_DROPIN, "ro")
    assert 'location = "127.0.0.1:5000"' in dropin
    assert 'location = "localhost:5001"' in dropin
    assert "registry.example" not in dropin  # not relayed: TLS as usual
    assert dropin.count("insecure = true") == 2


def test_privileged_docker_container_gets_no_buildah_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    engine = _engine()
    seen: list[ContainerSpec] = []

    def inside(spec: ContainerSpec) -> tuple[int, list[str]]:
        seen.append(spec)
        share = _host_path(spec, CONTAINER_SHARE)
        (share / "results.json").write_text(BuildResults(image="x:1").to_json())
        return 0, []

    engine.container_script = inside
    run_in_build_container("privileged", _request(parent_registry="127.0.0.1:5000"),
                           tasker=fake_tasker(engine)).raise_for_status()
    assert "ATOMIC_REACTOR_ENGINE" not in seen[0].environment
    assert CONTAINER_REGISTRIES_DROPIN not in {p for p, _ in seen[0].binds.values()}


def test_hostdocker_with_buildah_is_refused_before_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    engine = _engine()
    with pytest.raises(EngineConfigError, match=r"^--method hostdocker --engine buildah is "
                                                r"not supported: .*--method privileged"):
        run_in_build_container("hostdocker", _request(engine="buildah"),
                               tasker=fake_tasker(engine))
    assert engine.calls == []
    assert os.listdir(tmp_path) == []
