"""change_from_in_dockerfile: a multi-stage Dockerfile rewritten to ids, then built."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context, write_plugin_file
from tests.integration.plugins.dockerfile_helpers import build, push_parent, read_in_image
from tests.support.env import BaseImage

KEY = "change_from_in_dockerfile"

# moves a tag between pull_base_image and change_from_in_dockerfile
RETAG_PLUGIN = '''
from atomic_reactor.plugin import PreBuildPlugin


class Retag(PreBuildPlugin):
    key = "retag_for_test"

    def __init__(self, tasker, workflow, source: str, target: str):
        super().__init__(tasker, workflow)
        self.source, self.target = source, target

    def run(self):
        self.tasker.tag_image(self.source, self.target, force=True)
'''


def _platform(tasker: DockerTasker) -> str:
    return str(tasker.engine_host().platform)


def test_multi_stage_dockerfile_is_built_from_the_pulled_ids(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    parent = push_parent(tasker, base_image, "FROM {base}\nRUN echo parent > /parent\n")
    context = write_context(tmp_path / "ctx", f"""
        ARG BASE={base_image.repo}
        FROM --platform={_platform(tasker)} ${{BASE}} AS builder
        RUN echo one > /one
        from {parent} as other
        RUN cp /parent /from-other
        FROM builder AS mid
        RUN echo two > /two
        FROM scratch AS empty
        FROM {parent}
        COPY --from=mid /one /two /out/
        COPY --from=other /from-other /out/
    """)
    results = build(base_image, context, [{"name": KEY}])

    assert not results.is_failed(), results.error
    base_id = tasker.image_info(base_image.local).id
    parent_id = tasker.image_info(parent).id
    result = results.plugin_results["prebuild"][KEY]
    assert result == [
        {"stage": 0, "original": base_image.repo, "image_id": base_id, "alias": "builder"},
        {"stage": 1, "original": parent, "image_id": parent_id, "alias": "other"},
        {"stage": 4, "original": parent, "image_id": parent_id, "alias": None},
    ]
    assert results.dockerfile is not None
    froms = [line for line in results.dockerfile.splitlines()
             if line.split(" ", 1)[0].upper() == "FROM"]
    assert froms == [
        f"FROM --platform={_platform(tasker)} {base_id} AS builder",
        f"from {parent_id} as other",
        "FROM builder AS mid",
        "FROM scratch AS empty",
        f"FROM {parent_id}",
    ]
    image = str(results.image_id)
    assert read_in_image(tasker, image, "/out/one") == b"one\n"
    assert read_in_image(tasker, image, "/out/two") == b"two\n"
    assert read_in_image(tasker, image, "/out/from-other") == b"parent\n"
    assert read_in_image(tasker, image, "/parent") == b"parent\n"


def test_build_uses_what_was_pulled_even_if_the_name_moves(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    parent = push_parent(tasker, base_image, "FROM {base}\nRUN echo pulled > /which\n")
    impostor = f"{unique('art-impostor')}:1"
    tasker.tag_image(base_image.local, impostor)
    context = write_context(tmp_path / "ctx", f"FROM {parent}\nRUN cat /which\n")
    plugin_file = write_plugin_file(tmp_path / "retag.py", RETAG_PLUGIN)
    results = build_image_here(
        source=path_source(context), image=f"{unique()}:1",
        parent_registry=base_image.registry.address, plugin_files=[str(plugin_file)],
        prebuild_plugins=[
            {"name": "retag_for_test", "args": {"source": impostor, "target": parent}},
            {"name": KEY},
        ])
    assert not results.is_failed(), results.error
    # the local name now points to an image without /which; the build did not care
    assert tasker.image_info(parent).id == tasker.image_info(impostor).id
    assert read_in_image(tasker, str(results.image_id), "/which") == b"pulled\n"


def test_without_the_change_the_moved_name_breaks_the_build(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    # the control experiment for the test above: same setup, no change_from_in_dockerfile
    parent = push_parent(tasker, base_image, "FROM {base}\nRUN echo pulled > /which\n")
    impostor = f"{unique('art-impostor')}:1"
    tasker.tag_image(base_image.local, impostor)
    context = write_context(tmp_path / "ctx", f"FROM {parent}\nRUN cat /which\n")
    plugin_file = write_plugin_file(tmp_path / "retag.py", RETAG_PLUGIN)
    results = build_image_here(
        source=path_source(context), image=f"{unique()}:1",
        parent_registry=base_image.registry.address, plugin_files=[str(plugin_file)],
        prebuild_plugins=[
            {"name": "retag_for_test", "args": {"source": impostor, "target": parent}}])
    # it failed where the moved name bites: the RUN step reading the pulled image's file,
    # not earlier (pull, plugins) and not for another reason
    assert results.is_failed()
    assert results.error is not None and results.error["type"] == "BuildFailed", results.error
    assert results.exit_code == 3
    assert results.plugins_errors.keys() == {"docker_build"}, results.plugins_errors
    log = "\n".join(results.build_logs)
    assert "/which" in log and "No such file" in log, log


def test_image_not_on_the_engine_is_a_clear_failure(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    missing = f"{unique('art-missing')}:1"
    context = write_context(tmp_path / "ctx", f"FROM {missing}\n")
    results = build_image_here(source=path_source(context), image=f"{unique()}:1",
                               dont_pull_base_image=True, prebuild_plugins=[{"name": KEY}])
    assert results.is_failed()
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert f"FROM {missing} is not on the engine" in results.error["message"]
    assert "pull_base_image" in results.error["message"]
