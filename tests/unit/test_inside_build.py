"""``inside-build`` input selection and reading (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomic_reactor._buildcontainer import inside as _inside_build
from atomic_reactor._buildcontainer.inside import (
    build_inside,
    choose_input,
    parse_input_args,
    read_build_input,
)
from atomic_reactor.cli.main import main
from atomic_reactor.errors import BuildJsonError, InputError

BUILD_JSON = {"source": {"provider": "git", "uri": "https://example.org/app.git"},
              "image": "app:1"}
OSV3_BUILD = {"spec": {"source": {"git": {"uri": "https://example.org/os.git", "ref": "v2"},
                                  "contextDir": "docker/"},
                       "output": {"to": {"name": "ns/from-build:3"}}}}


@pytest.fixture(autouse=True)
def no_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default build json is in a directory of the test's own (absent unless made)."""
    monkeypatch.setattr(_inside_build, "DEFAULT_BUILD_JSON", str(tmp_path / "share/build.json"))
    monkeypatch.setattr(_inside_build, "SHARE_DIR", str(tmp_path / "share"))
    monkeypatch.setattr(_inside_build, "DEFAULT_RESULTS", str(tmp_path / "share/results.json"))


def _file(tmp_path: Path, data: object, name: str = "build.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# -- choosing ------------------------------------------------------------------------------


def test_explicit_inputs_are_taken_as_given() -> None:
    for name in ("path", "env", "osv3"):
        assert choose_input(name, {}, environ={}) == name


def test_auto_picks_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, BUILD_JSON)
    assert choose_input("auto", {"path": str(path)}, environ={}) == "path"
    got = read_build_input("auto", {"path": str(path)}, environ={})
    assert got.data == BUILD_JSON and got.input == "path" and got.origin == str(path)


def test_auto_picks_the_default_file(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    _file(tmp_path / "share", BUILD_JSON)
    assert read_build_input("auto", {}, environ={}).origin == str(tmp_path / "share/build.json")


def test_auto_picks_the_variable() -> None:
    environ = {"BUILD_JSON": json.dumps(BUILD_JSON)}
    got = read_build_input("auto", {}, environ=environ)
    assert got.input == "env" and got.data == BUILD_JSON and got.origin == "$BUILD_JSON"
    environ = {"OTHER": json.dumps(BUILD_JSON)}
    assert read_build_input("auto", {"env_name": "OTHER"}, environ=environ).input == "env"


def test_auto_picks_openshift() -> None:
    assert choose_input("auto", {}, environ={"BUILD": json.dumps(OSV3_BUILD)}) == "osv3"


def test_auto_with_no_input_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(BuildJsonError) as info:
        choose_input("auto", {"env_name": "MINE"}, environ={})
    message = str(info.value)
    assert "no build input found" in message
    assert str(tmp_path / "share/build.json") in message
    assert "$MINE is not set" in message and "$BUILD is not set" in message
    assert "--input path|env|osv3" in message


def test_auto_with_several_inputs_names_them(tmp_path: Path) -> None:
    path = _file(tmp_path, BUILD_JSON)
    environ = {"BUILD_JSON": "{}", "BUILD": "{}"}
    with pytest.raises(BuildJsonError, match=r"several build inputs apply: path \(file .*\), "
                                             r"env \(\$BUILD_JSON\), osv3 .*choose one"):
        choose_input("auto", {"path": str(path)}, environ=environ)


def test_empty_variable_does_not_count() -> None:
    with pytest.raises(BuildJsonError, match="no build input found"):
        choose_input("auto", {}, environ={"BUILD_JSON": "", "BUILD": ""})


def test_unknown_input_and_arguments() -> None:
    with pytest.raises(BuildJsonError, match="unknown input 'ftp'"):
        choose_input("ftp", {}, environ={})
    with pytest.raises(BuildJsonError, match="input 'env' does not take the argument 'path'"):
        choose_input("env", {"path": "/x"}, environ={})
    with pytest.raises(BuildJsonError, match="input 'osv3' does not take the argument 'x'"):
        choose_input("osv3", {"x": "1"}, environ={})
    # results= is taken by every input; auto takes every input's arguments
    assert choose_input("env", {"results": "/r.json"}, environ={}) == "env"
    assert choose_input("auto", {"path": "/nope", "env_name": "X"}, environ={"X": "{}"}) == "env"


def test_parse_input_args() -> None:
    assert parse_input_args(["path=/a=b", "env_name=X"]) == {"path": "/a=b", "env_name": "X"}
    assert parse_input_args(None) == {}
    for bad in ("novalue", "=x"):
        with pytest.raises(BuildJsonError, match="is not of the form KEY=VALUE"):
            parse_input_args([bad])


# -- reading -------------------------------------------------------------------------------


def test_path_input_errors(tmp_path: Path) -> None:
    with pytest.raises(BuildJsonError, match="does not exist"):
        read_build_input("path", {"path": str(tmp_path / "missing.json")}, environ={})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(BuildJsonError, match="is not valid JSON"):
        read_build_input("path", {"path": str(bad)}, environ={})


def test_env_input_errors() -> None:
    with pytest.raises(BuildJsonError, match=r"input env: \$BUILD_JSON is not set"):
        read_build_input("env", {}, environ={})
    with pytest.raises(BuildJsonError, match=r"\$BUILD_JSON is not valid JSON"):
        read_build_input("env", {}, environ={"BUILD_JSON": "[1"})
    with pytest.raises(BuildJsonError, match=r"\$BUILD_JSON must hold a JSON object"):
        read_build_input("env", {}, environ={"BUILD_JSON": "[1]"})


def test_osv3_from_the_build_object() -> None:
    plugins = {"prebuild_plugins": [{"name": "pull_base_image", "args": {}}]}
    got = read_build_input("osv3", environ={"BUILD": json.dumps(OSV3_BUILD),
                                            "ATOMIC_REACTOR_PLUGINS": json.dumps(plugins)})
    assert got.input == "osv3"
    assert got.data == {
        "source": {"provider": "git", "uri": "https://example.org/os.git",
                   "provider_params": {"git_commit": "v2"}, "dockerfile_path": "docker/"},
        "image": "ns/from-build:3",
        "prebuild_plugins": [{"name": "pull_base_image", "args": {}}],
    }


def test_osv3_variables_override_the_build_object() -> None:
    got = read_build_input("osv3", environ={
        "BUILD": json.dumps(OSV3_BUILD), "SOURCE_URI": "https://example.org/env.git",
        "SOURCE_REF": "main", "OUTPUT_IMAGE": "172.30.0.1:5000/ns/app:4",
        "OUTPUT_REGISTRY": "172.30.0.1:5000"})
    assert got.data["source"]["uri"] == "https://example.org/env.git"
    assert got.data["source"]["provider_params"] == {"git_commit": "main"}
    # the registry is the target; the image name is without it
    assert got.data["image"] == "ns/app:4"
    assert got.data["target_registries"] == ["172.30.0.1:5000"]


def test_osv3_plugins_may_name_target_registries() -> None:
    plugins = {"target_registries": ["r.example:5000"]}
    got = read_build_input("osv3", environ={
        "BUILD": "{}", "SOURCE_URI": "https://example.org/x.git", "OUTPUT_IMAGE": "x:1",
        "OUTPUT_REGISTRY": "172.30.0.1:5000", "ATOMIC_REACTOR_PLUGINS": json.dumps(plugins)})
    assert got.data["target_registries"] == ["r.example:5000"]
    assert "provider_params" not in got.data["source"]


def test_osv3_errors() -> None:
    with pytest.raises(BuildJsonError, match=r"input osv3: \$BUILD is not set"):
        read_build_input("osv3", environ={})
    with pytest.raises(BuildJsonError, match=r"\$BUILD is not valid JSON"):
        read_build_input("osv3", environ={"BUILD": "{"})
    with pytest.raises(BuildJsonError, match="no source: set \\$SOURCE_URI"):
        read_build_input("osv3", environ={"BUILD": "{}", "OUTPUT_IMAGE": "x"})
    with pytest.raises(BuildJsonError, match="no output image: set \\$OUTPUT_IMAGE"):
        read_build_input("osv3", environ={"BUILD": "{}", "SOURCE_URI": "https://e.org/x"})
    with pytest.raises(BuildJsonError, match=r"\$ATOMIC_REACTOR_PLUGINS is not valid JSON"):
        read_build_input("osv3", environ={"BUILD": json.dumps(OSV3_BUILD),
                                          "ATOMIC_REACTOR_PLUGINS": "nope"})


# -- build_inside: errors before the build are recorded in the results file -----------------


def test_bad_input_is_raised_and_recorded(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    with pytest.raises(BuildJsonError, match="no build input found"):
        build_inside("auto", [], results_file=str(results), environ={})
    data = json.loads(results.read_text())
    assert data["failed"] is True
    assert data["error"]["type"] == "BuildJsonError" and data["error"]["exit_code"] == 2


def test_substitutions_and_host_keys(tmp_path: Path) -> None:
    # a request that fails validation after the substitutions were applied
    path = _file(tmp_path, {**BUILD_JSON, "method": "privileged", "build_image": "b:1"})
    results = tmp_path / "out" / "results.json"
    results.parent.mkdir()
    with pytest.raises(InputError, match="invalid image name"):
        build_inside("path", [f"path={path}", f"results={results}"],
                     ["image=not a name"], environ={})
    assert json.loads(results.read_text())["error"]["message"].startswith("invalid image name")
    with pytest.raises(BuildJsonError, match="substitution"):
        build_inside("path", {"path": str(path)}, ["prebuild_plugins.nope.x=1"], environ={})


def test_default_results_file_only_with_a_share_directory(tmp_path: Path) -> None:
    assert _inside_build.default_results_file() is None
    (tmp_path / "share").mkdir()
    assert _inside_build.default_results_file() == str(tmp_path / "share/results.json")
    with pytest.raises(BuildJsonError):
        build_inside("env", [], environ={})
    assert json.loads((tmp_path / "share/results.json").read_text())["failed"] is True


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILD_JSON", raising=False)
    monkeypatch.delenv("BUILD", raising=False)
    assert main(["inside-build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("atomic-reactor: error: no build input found")
    assert main(["inside-build", "--input", "env", "--input-arg", "bogus=1"]) == 2
    assert "does not take the argument 'bogus'" in capsys.readouterr().err
    bad = _file(tmp_path, ["not", "an", "object"])
    assert main(["inside-build", "--input", "path", "--input-arg", f"path={bad}"]) == 2
    assert "must hold a JSON object" in capsys.readouterr().err
