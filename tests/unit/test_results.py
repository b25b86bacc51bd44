"""Unit tests of typed build results (_results): JSON round trip, status, jsonable."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._engine.base import RegistryAuth
from atomic_reactor._results import BuildResults, ExportedImage, PushedImage, jsonable
from atomic_reactor.errors import (
    AtomicReactorError,
    BuildCancelled,
    BuildFailed,
    DockerfileError,
    PluginFailed,
    PushError,
)
from atomic_reactor.util import ImageName

DIGEST1 = "sha256:" + "1" * 64
DIGEST2 = "sha256:" + "2" * 64


def full_results(**changes: Any) -> BuildResults:
    values: dict[str, Any] = {
        "build_logs": ("Step 1/2 : FROM fedora\n", "Successfully built abc\n"),
        "dockerfile": "FROM fedora\nRUN true\n",
        "built_img_inspect": {"Id": "sha256:abc", "Config": {"Labels": {"a": "b"}}},
        "built_img_info": {"Id": "sha256:abc", "RepoTags": ["app:1"]},
        "base_img_inspect": {"Id": "sha256:base"},
        "base_img_info": {"Id": "sha256:base"},
        "base_plugins_output": {"pull_base_image": [{"image": "fedora:latest"}]},
        "built_img_plugins_output": {"tag_and_push": []},
        "image": "app:1",
        "image_id": "sha256:abc",
        "base_image": "fedora:latest",
        "base_image_id": "sha256:base",
        "pushed": (
            PushedImage(registry="r1:5000", image="r1:5000/app:1", digest=DIGEST1, size=528),
            PushedImage(registry="r1:5000", image="r1:5000/app:extra", digest=DIGEST1,
                        size=528, attempts=2),
            PushedImage(registry="r2:5000", image="r2:5000/app:1", digest=DIGEST2),
            PushedImage(registry="r3:5000", image="r3:5000/app:1", digest=None),
        ),
        "tags": ("app:1", "app:extra"),
        "source": {"provider": "path", "uri": "file:///src"},
        "plugin_results": {"prebuild": {"pull_base_image": []}},
        "plugins_timestamps": {"pull_base_image": "2024-01-01T00:00:00+00:00"},
        "plugins_durations": {"pull_base_image": 0.25},
        "plugins_errors": {},
        "exported_images": (ExportedImage(path="/tmp/image.tar", size=10, sha256sum="ab",
                                          md5sum="cd", compression="gzip"),),
        "log_file": "/tmp/build.log",
        "duration": 12.5,
    }
    values.update(changes)
    return BuildResults(**values)


# -- round trip ------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    results = full_results()
    data = results.to_dict()
    assert BuildResults.from_dict(data) == results
    # through real JSON text too
    assert BuildResults.from_dict(json.loads(results.to_json())) == results


def test_to_dict_shape() -> None:
    data = full_results().to_dict()
    assert data["version"] == 1
    assert data["failed"] is False
    assert data["image_id"] == "sha256:abc"
    assert data["build_logs"] == ["Step 1/2 : FROM fedora\n", "Successfully built abc\n"]
    assert data["pushed"][0] == {"registry": "r1:5000", "image": "r1:5000/app:1",
                                 "digest": DIGEST1, "size": 528, "attempts": 1}
    assert data["exported_images"][0]["compression"] == "gzip"
    assert "_exception" not in data
    assert not any(key.startswith("_") for key in data)
    json.dumps(data)  # JSON-safe


def test_digests_per_registry() -> None:
    results = full_results()
    expected = {
        "r1:5000": {"r1:5000/app:1": DIGEST1, "r1:5000/app:extra": DIGEST1},
        "r2:5000": {"r2:5000/app:1": DIGEST2},
    }
    assert results.digests == expected
    assert results.to_dict()["digests"] == expected
    assert BuildResults.from_dict(results.to_dict()).digests == expected


def test_from_dict_ignores_unknown_keys() -> None:
    results = BuildResults.from_dict({"image": "a:1", "future_field": 1, "version": 99,
                                      "_exception": "x"})
    assert results == BuildResults(image="a:1")


def test_from_dict_empty() -> None:
    results = BuildResults.from_dict({})
    assert results == BuildResults()
    assert results.is_failed() is False


def test_pushed_image_tag() -> None:
    assert PushedImage(registry="r", image="r:5000/app:v2", digest=None).tag == "v2"


def test_replace() -> None:
    results = full_results()
    changed = results.replace(image="other:1")
    assert changed.image == "other:1"
    assert results.image == "app:1"


# -- status ----------------------------------------------------------------------------------


def test_success() -> None:
    results = full_results()
    assert results.is_failed() is False
    assert results.exception is None
    assert results.exit_code == 0
    assert results.raise_for_status() is results


def test_failed_build_step() -> None:
    results = BuildResults(fail_reason="RUN false: exit 1")
    assert results.is_failed() is True
    assert results.to_dict()["failed"] is True
    assert results.exit_code == 3
    with pytest.raises(BuildFailed, match="RUN false"):
        results.raise_for_status()


@pytest.mark.parametrize(("return_code", "failed"), [(None, False), (0, False), (1, True),
                                                      (137, True)])
def test_return_code(return_code: int | None, failed: bool) -> None:
    results = BuildResults(return_code=return_code)
    assert results.is_failed() is failed
    if failed:
        assert isinstance(results.exception, BuildFailed)
        assert str(return_code) in str(results.exception)
        assert results.exit_code == 3
    else:
        assert results.exit_code == 0


def test_error_dict_decides_exception() -> None:
    results = BuildResults(error={"type": "PushError", "category": "registry",
                                  "message": "denied", "exit_code": 4})
    assert results.is_failed() is True
    assert results.exit_code == 4
    with pytest.raises(PushError, match="denied"):
        results.raise_for_status()


def test_plugin_failed_error_keeps_cause_exit_code_through_json() -> None:
    error = PluginFailed("tag_and_push: denied", plugin="tag_and_push",
                         cause=PushError("denied"))
    results = BuildResults(error={**error.to_dict(), "exit_code": error.exit_code})
    restored = BuildResults.from_dict(json.loads(results.to_json()))
    exc = restored.exception
    assert isinstance(exc, PluginFailed)
    assert exc.plugin == "tag_and_push"
    assert isinstance(exc.cause, PushError)
    assert restored.exit_code == 4


def test_plugin_failed_with_foreign_cause_through_json() -> None:
    error = PluginFailed("p: KeyError: 'x'", plugin="p", cause=KeyError("x"))
    restored = BuildResults.from_dict({"error": error.to_dict()})
    assert restored.exit_code == 5


def test_canceled_autorebuild_names_its_plugin_through_json() -> None:
    from atomic_reactor.errors import AutoRebuildCanceled

    error = AutoRebuildCanceled("stop_autorebuild_if_disabled", "autorebuild is disabled")
    data = error.to_dict()
    assert data["plugin"] == "stop_autorebuild_if_disabled"
    assert data["reason"] == "autorebuild is disabled"
    restored = BuildResults.from_dict(json.loads(BuildResults(error=data).to_json()))
    exc = restored.exception
    assert isinstance(exc, AutoRebuildCanceled)
    assert (exc.plugin_key, exc.msg, str(exc)) == (error.plugin_key, error.msg, str(error))
    assert restored.exit_code == error.exit_code


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cancelled_through_json(signum: int, exit_code: int) -> None:
    error = BuildCancelled(signum)
    results = BuildResults(error={**error.to_dict(), "signal": int(signum)})
    restored = BuildResults.from_dict(json.loads(results.to_json()))
    assert isinstance(restored.exception, BuildCancelled)
    assert restored.exit_code == exit_code


def test_unknown_error_type_exits_1() -> None:
    results = BuildResults(error={"type": "SomethingNew", "message": "boom"})
    assert isinstance(results.exception, AtomicReactorError)
    assert results.exit_code == 1
    assert str(results.exception) == "boom"
    # not a class of the errors module either
    assert BuildResults(error={"type": "signal", "message": "x"}).exit_code == 1


def test_in_memory_exception_wins() -> None:
    exc = DockerfileError("no FROM")
    results = BuildResults(error={"type": "DockerfileError", "message": "no FROM"},
                           _exception=exc)
    assert results.exception is exc
    with pytest.raises(DockerfileError) as info:
        results.raise_for_status()
    assert info.value is exc
    # the in-memory exception is not part of equality or the JSON form
    assert results == BuildResults(error={"type": "DockerfileError", "message": "no FROM"})


def test_rebuilt_errors_have_their_attributes() -> None:
    push = BuildResults(error={"type": "PushError", "message": "denied"}).exception
    assert isinstance(push, PushError)
    assert push.registry is None
    config = BuildResults(error={"type": "PluginConfigError", "message": "bad"}).exception
    assert getattr(config, "plugin", "missing") is None


# -- jsonable --------------------------------------------------------------------------------


@dataclass
class Inner:
    name: ImageName
    paths: list[Path]
    hidden: str = field(default="secret", repr=False)


@dataclass(frozen=True)
class Outer:
    inner: Inner
    tags: frozenset[str]


class WithToDict:
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "custom", "image": ImageName.parse("a:1")}


def test_jsonable_scalars() -> None:
    for value in (None, True, 0, 1.5, "s"):
        assert jsonable(value) == value


def test_jsonable_dataclasses_image_names_sets() -> None:
    value = Outer(inner=Inner(name=ImageName.parse("localhost:5000/app"),
                              paths=[Path("/a/b")]),
                  tags=frozenset({"b", "a", "c"}))
    assert jsonable(value) == {
        "inner": {"name": "localhost:5000/app", "paths": ["/a/b"]},
        "tags": ["a", "b", "c"],
    }
    assert jsonable({3, 1, 2}) == [1, 2, 3]


def test_jsonable_leaves_out_repr_false_fields() -> None:
    auth = RegistryAuth(username="u", password="hunter2", registry="r")
    assert jsonable(auth) == {"username": "u", "registry": "r"}


def test_jsonable_exceptions() -> None:
    assert jsonable(PushError("denied")) == {
        "error": {"type": "PushError", "category": "registry", "message": "denied"}}
    assert jsonable(ValueError("bad value")) == {
        "error": {"type": "ValueError", "message": "bad value"}}
    failed = PluginFailed("p: x", plugin="p", cause=PushError("x"))
    assert jsonable(failed)["error"]["plugin"] == "p"


def test_jsonable_containers_and_others() -> None:
    value = {1: (1, 2), "b": b"bytes\xff", "obj": WithToDict(), "other": object}
    result = jsonable(value)
    assert result["1"] == [1, 2]
    assert result["b"] == "bytes\ufffd"
    assert result["obj"] == {"kind": "custom", "image": "a:1"}
    assert isinstance(result["other"], str)
    json.dumps(result)


def test_jsonable_dataclass_class_is_not_expanded() -> None:
    assert isinstance(jsonable(Inner), str)


def test_results_with_exotic_plugin_output_serialise() -> None:
    results = BuildResults(plugin_results=jsonable({"prebuild": {
        "x": {ImageName.parse("a"), ImageName.parse("b")}, "y": PushError("no")}}))
    data = json.loads(results.to_json())
    assert data["plugin_results"]["prebuild"]["x"] == ["a", "b"]
    assert data["plugin_results"]["prebuild"]["y"]["error"]["type"] == "PushError"
