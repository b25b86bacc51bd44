"""Code written for atomic-reactor 1.6, run for real (issue 12): a 1.6-style plugin file
in a build that pushes, a build json as osbs-client wrote it through the command line,
and 1.6's ``<registry>/library/<repo>`` fallback of ``pull_base_image``."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import PluginFailed, PullError
from atomic_reactor.inner import DockerBuildWorkflow
from tests.integration.helpers import Outcome, path_source, unique, write_context
from tests.support.env import BaseImage, Registry

PLUGINS_1_6 = str(Path(__file__).resolve().parents[1] / "data" / "compat16" / "plugins_1_6.py")


def _push_as_library(tasker: DockerTasker, base_image: BaseImage) -> str:
    """Push the base image as ``<registry>/library/<name>:1`` only; return ``<name>:1``."""
    name = unique("art-library")
    reference = f"{base_image.registry.address}/library/{name}:1"
    tasker.tag_image(base_image.local, reference)
    try:
        tasker.push(reference, insecure=True)
    finally:
        tasker.remove_image(reference, noprune=True)
    return f"{name}:1"


def test_pull_base_image_falls_back_to_library(tasker: DockerTasker,
                                               base_image: BaseImage, tmp_path: Path) -> None:
    from atomic_reactor.api import build_image_here

    base = _push_as_library(tasker, base_image)
    registry = base_image.registry.address
    context = write_context(tmp_path / "src", f"FROM {base}\nRUN echo ok > /ok\n")
    results = build_image_here(path_source(context), f"{unique()}:1", parent_registry=registry,
                               parent_registry_insecure=True)
    assert not results.is_failed(), results.error
    [pulled] = results.plugin_results["prebuild"]["pull_base_image"]
    assert pulled["image"] == base
    assert pulled["pulled_from"] == f"{registry}/library/{base}"
    assert pulled["image_id"] == base_image.image_id


def test_pull_base_image_without_either_reports_the_first_name(
        base_image: BaseImage, tmp_path: Path) -> None:
    from atomic_reactor.api import build_image_here

    missing = f"{unique('art-missing')}:1"
    registry = base_image.registry.address
    context = write_context(tmp_path / "src", f"FROM {missing}\n")
    results = build_image_here(path_source(context), f"{unique()}:1", parent_registry=registry,
                               parent_registry_insecure=True)
    assert results.is_failed()
    with pytest.raises(PluginFailed) as caught:
        results.raise_for_status()
    assert isinstance(caught.value.cause, PullError)
    assert results.exit_code == 4  # a registry failure
    assert f"{registry}/{missing}" in str(caught.value)
    assert "library" not in str(caught.value)


def test_1_6_plugin_file_in_a_build_that_pushes(base_image: BaseImage, registry: Registry,
                                                tmp_path: Path) -> None:
    name = unique()
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\nRUN echo 1.6 > /v\n")
    exported = tmp_path / "exported.tar"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the 1.6 file's old names
        workflow = DockerBuildWorkflow(
            path_source(context), f"{name}:1", plugin_files=[PLUGINS_1_6],
            client_version="0.39", openshift_build_selflink="/oapi/v1/builds/b-1",
            prebuild_plugins=[{"name": "pull_base_image", "args": {
                "parent_registry": base_image.registry.address,
                "parent_registry_insecure": True}},
                {"name": "fail_if_asked_16", "args": {"fail": False}}],
            postbuild_plugins=[
                {"name": "add_tag_16", "args": {"tag": "from-1-6"}},
                {"name": "export_dict_16", "args": {"path": str(exported)}},
                {"name": "read_exported_16"},
                {"name": "compress", "args": {"method": "gzip",
                                              "export_dir": str(tmp_path / "out")}},
                {"name": "tag_and_push", "args": {"registries": {
                    registry.address: {"insecure": True}}}}],
            exit_plugins=[{"name": "read_push_conf_16"}, {"name": "remove_built_image"}])
        results = workflow.build_container_image()
    assert not results.is_failed(), results.error

    # the tag the 1.6 plugin added by assigning ImageName attributes was pushed
    with RegistryClient(registry.address) as client:
        assert sorted(client.list_tags(name)) == ["1", "from-1-6"]
        digest = client.get_manifest_digest(name, "from-1-6")
    # push_conf as 1.6 exit plugins read it
    read = results.plugin_results["exit"]["read_push_conf_16"]
    assert read == {registry.address: {f"{name}:1": results.digests[registry.address][
        f"{registry.address}/{name}:1"], f"{name}:from-1-6": digest}}
    # the dict appended by the 1.6 plugin: read back as a dict, compressed by compress
    meta = results.plugin_results["postbuild"]["export_dict_16"]
    assert results.plugin_results["postbuild"]["read_exported_16"] == {
        "path": str(exported), "size": meta["size"], "sha256sum": meta["sha256sum"]}
    paths = [image.path for image in results.exported_images]
    assert paths[0] == str(exported)
    assert paths[1].startswith(str(tmp_path / "out")) and paths[1].endswith(".gz")
    compress = results.plugin_results["postbuild"]["compress"]
    assert compress["source"] == str(exported)  # compress took the 1.6 plugin's export
    # 1.6 shapes in the 1.6 fields of the results
    assert sorted(results.built_img_plugins_output["tag_and_push"]) == sorted([
        f"{registry.address}/{name}:1", f"{registry.address}/{name}:from-1-6"])
    assert workflow.client_version == "0.39"


def test_osbs_client_build_json_on_the_command_line(
        cli: Callable[..., Outcome], base_image: BaseImage, registry: Registry,
        tmp_path: Path) -> None:
    name = unique()
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        LABEL distribution-scope=private
        RUN echo osbs > /osbs
    """)
    (context / ".osbs-repo-config").write_text("[autorebuild]\nenabled = false\n")
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "client_version": "0.39.1",
        "openshift_build_selflink": "/oapi/v1/namespaces/default/builds/app-1",
        "source": {"provider": "path", "uri": f"file://{context}"},
        "image": f"{name}:1",
        "prebuild_plugins": [
            {"name": "pull_base_image", "args": {
                "parent_registry": base_image.registry.address,
                "parent_registry_insecure": True}},
            {"name": "add_labels_in_dockerfile", "args": {
                "labels": {"vendor": "Example", "distribution-scope": "public"},
                "dont_overwrite": None}},
            {"name": "change_from_in_dockerfile"},
            {"name": "stop_autorebuild_if_disabled"},  # not a rebuild: goes on
        ],
        "postbuild_plugins": [
            {"name": "tag_and_push", "args": {"registries": {
                registry.address: {"insecure": True}}}},
            {"name": "store_logs_to_file", "args": {"file_path": str(tmp_path / "log")}},
        ],
        "exit_plugins": [{"name": "remove_built_image"}],
    }))
    results_file = tmp_path / "results.json"
    out = cli("build", "json", str(build_json), "--metadata-file", str(results_file))
    assert out.code == 0, out.stderr
    assert "client_version='0.39.1' (atomic-reactor 1.6) has no effect" in out.stderr
    data = json.loads(results_file.read_text())
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == ["1"]
    # the Dockerfile's distribution-scope stayed (dont_overwrite_if_in_dockerfile)
    added = data["plugin_results"]["prebuild"]["add_labels_in_dockerfile"]
    assert added["kept"] == {"distribution-scope": "private"}
    assert added["labels"]["vendor"] == "Example"
    assert out.new_containers == []


def test_untagged_image_name_through_the_pipeline(base_image: BaseImage, registry: Registry,
                                                  tmp_path: Path) -> None:
    """1.6 scripts name the image without a tag: the value stays untagged, the engine and
    the registry get ``latest`` everywhere (build, squash, reproducible, push)."""
    from atomic_reactor.api import build_image_here

    name = unique()
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo a > /a
        RUN echo b > /b
    """)
    results = build_image_here(
        path_source(context), name, parent_registry=base_image.registry.address,
        parent_registry_insecure=True, target_registries=[registry.address],
        target_registries_insecure=True, reproducible=True, source_date_epoch=1700000000,
        prepublish_plugins=[{"name": "squash", "args": {"from_base": True}}],
        exit_plugins=[{"name": "remove_built_image"}])
    for exported in results.exported_images:  # squash's archive, in a directory of its own
        assert Path(exported.path).parent.name.startswith("atomic-reactor-export-")
        shutil.rmtree(Path(exported.path).parent)
    assert not results.is_failed(), results.error
    assert results.image == name  # as given
    assert f"{name}:latest" in results.tags
    assert list(results.digests[registry.address]) == [f"{registry.address}/{name}:latest"]
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == ["latest"]
