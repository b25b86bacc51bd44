"""Python API for atomic-reactor: the official way to run a build from code.

::

    from atomic_reactor.api import build_image_here

    results = build_image_here(
        {"provider": "path", "uri": "file:///src/app"},
        "app:1",
        parent_registry="127.0.0.1:5000",
        target_registries=["127.0.0.1:5000"],
    )
    results.raise_for_status()
    print(results.image_id, results.digests)

:func:`check_reproducible` builds twice and compares the two images (what
``--check-reproducible`` does)::

    from atomic_reactor.api import check_reproducible

    check = check_reproducible({"provider": "git", "uri": "file:///src/app"}, "app:1")
    print("\n".join(check.comparison.lines()))
    check.raise_for_status()  # NotReproducible (exit code 7) when they differ
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atomic_reactor._request import BuildRequest
from atomic_reactor._results import BuildResults
from atomic_reactor._secrets import register_secret

__all__ = [
    "BuildResults",
    "ImageComparison",
    "ReproducibilityCheck",
    "build_image_here",
    "build_image_in_privileged_container",
    "build_image_using_hosts_docker",
    "check_reproducible",
    "register_secret",
]

if TYPE_CHECKING:
    from atomic_reactor._image.compare import ImageComparison
    from atomic_reactor._reproducible import ReproducibilityCheck


def __getattr__(name: str) -> Any:
    # the check's result types load with the image toolkit, on first use only
    if name == "ImageComparison":
        from atomic_reactor._image.compare import ImageComparison

        return ImageComparison
    if name == "ReproducibilityCheck":
        from atomic_reactor._reproducible import ReproducibilityCheck

        return ReproducibilityCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _request(source: Mapping[str, Any], image: str, parent_registry: str | None,
             target_registries: Sequence[str] | None, parent_registry_insecure: bool,
             target_registries_insecure: bool, dont_pull_base_image: bool,
             kwargs: Mapping[str, Any], **extra: Any) -> tuple[BuildRequest, dict[str, Any]]:
    passthrough = {k: v for k, v in kwargs.items() if k == "tasker"}
    data = {k: v for k, v in kwargs.items() if k != "tasker"}
    data.update(source=source, image=image, parent_registry=parent_registry,
                target_registries=list(target_registries or []),
                parent_registry_insecure=parent_registry_insecure,
                target_registries_insecure=target_registries_insecure,
                dont_pull_base_image=dont_pull_base_image, **extra)
    return BuildRequest.from_mapping(data), passthrough


def build_image_here(
    source: Mapping[str, Any],
    image: str,
    parent_registry: str | None = None,
    target_registries: Sequence[str] | None = None,
    parent_registry_insecure: bool = False,
    target_registries_insecure: bool = False,
    dont_pull_base_image: bool = False,
    **kwargs: Any,
) -> BuildResults:
    """Build the image from ``source`` in the current environment.

    :param source: dict, where/how to get source code to put in image
    :param image: str, tag for built image ([registry/]image_name[:tag])
    :param parent_registry: str, registry to pull base image from
    :param target_registries: list of str, registries to push the image to
    :param parent_registry_insecure: bool, allow connecting to parent registry over plain http
    :param target_registries_insecure: bool, allow connecting to target registries over plain http
    :param dont_pull_base_image: bool, don't pull or update base image specified in dockerfile
    :param kwargs: plugin lists (``prebuild_plugins`` …), ``plugin_files``, ``retry``,
        ``buildargs``, ``use_cache``, ``log_file``, ``tasker``; push settings
        ``push_method`` ("registry" or "engine"), ``compression`` ("gzip", "zstd", "none"),
        ``compression_level`` and ``manifest_format`` ("docker", "oci")
    :return: BuildResults (check ``is_failed()`` or call ``raise_for_status()``)
    """
    from atomic_reactor.inner import DockerBuildWorkflow

    request, passthrough = _request(source, image, parent_registry, target_registries,
                                    parent_registry_insecure, target_registries_insecure,
                                    dont_pull_base_image, kwargs)
    workflow = DockerBuildWorkflow(**request.workflow_kwargs(), **passthrough)
    return workflow.build_container_image()


def build_image_in_privileged_container(
    build_image: str,
    source: Mapping[str, Any],
    image: str,
    parent_registry: str | None = None,
    target_registries: Sequence[str] | None = None,
    push_buildroot_to: str | None = None,
    parent_registry_insecure: bool = False,
    target_registries_insecure: bool = False,
    dont_pull_base_image: bool = False,
    **kwargs: Any,
) -> BuildResults:
    """Build in a privileged container that runs an engine of its own.

    :param build_image: str, image where target image should be built
    :param push_buildroot_to: str, repository where the build container is pushed afterwards
        (a registry alone: ``REGISTRY/buildroot-NAME:TIMESTAMP``)
    :param kwargs: as :func:`build_image_here`, plus ``keep_build_container`` (bool: do
        not remove the build container afterwards); ``engine="buildah"`` builds with
        buildah in the container (no daemon), otherwise a private dockerd builds
    (other parameters as :func:`build_image_here`)
    :return: BuildResults, read back from the build container
    """
    from atomic_reactor._buildcontainer.run import run_in_build_container

    kwargs = dict(kwargs)
    keep = bool(kwargs.pop("keep_build_container", False))
    request, passthrough = _request(source, image, parent_registry, target_registries,
                                    parent_registry_insecure, target_registries_insecure,
                                    dont_pull_base_image, kwargs, build_image=build_image,
                                    push_buildroot_to=push_buildroot_to)
    return run_in_build_container("privileged", request, keep_build_container=keep, **passthrough)


def build_image_using_hosts_docker(
    build_image: str,
    source: Mapping[str, Any],
    image: str,
    parent_registry: str | None = None,
    target_registries: Sequence[str] | None = None,
    push_buildroot_to: str | None = None,
    parent_registry_insecure: bool = False,
    target_registries_insecure: bool = False,
    dont_pull_base_image: bool = False,
    **kwargs: Any,
) -> BuildResults:
    """Build in a container that uses the host's engine through its socket.

    :param build_image: str, image where target image should be built
    :param push_buildroot_to: str, repository where the build container is pushed afterwards
        (a registry alone: ``REGISTRY/buildroot-NAME:TIMESTAMP``)
    :param kwargs: as :func:`build_image_here`, plus ``keep_build_container`` (bool: do
        not remove the build container afterwards)
    (other parameters as :func:`build_image_here`)
    :return: BuildResults, read back from the build container
    """
    from atomic_reactor._buildcontainer.run import run_in_build_container

    kwargs = dict(kwargs)
    keep = bool(kwargs.pop("keep_build_container", False))
    request, passthrough = _request(source, image, parent_registry, target_registries,
                                    parent_registry_insecure, target_registries_insecure,
                                    dont_pull_base_image, kwargs, build_image=build_image,
                                    push_buildroot_to=push_buildroot_to)
    return run_in_build_container("hostdocker", request, keep_build_container=keep, **passthrough)


def check_reproducible(
    source: Mapping[str, Any],
    image: str,
    parent_registry: str | None = None,
    parent_registry_insecure: bool = False,
    dont_pull_base_image: bool = False,
    *,
    delay: float = 2.0,
    limit: int = 10,
    **kwargs: Any,
) -> ReproducibilityCheck:
    """Build the image from ``source`` twice, here, and compare the two images
    (``--check-reproducible``).

    Both are reproducible builds without the engine's cache (``SOURCE_DATE_EPOCH``:
    the git commit's time, or ``source_date_epoch``), the second ``delay`` seconds
    after the first, so what depends on the time shows. Nothing is pushed; no
    post-build plugin but ``reproducible`` and no exit plugin runs. The first image is
    removed when the two differ; the second keeps ``image`` as its name.

    :param source: dict, where/how to get source code to put in image
    :param image: str, tag for built image ([registry/]image_name[:tag])
    :param parent_registry: str, registry to pull base image from
    :param parent_registry_insecure: bool, allow connecting to parent registry over plain http
    :param dont_pull_base_image: bool, don't pull or update base image specified in dockerfile
    :param delay: float, seconds between the two builds (file times have whole seconds)
    :param limit: int, files named per differing layer at most
    :param kwargs: as :func:`build_image_here` (``prebuild_plugins``, ``buildargs``,
        ``source_date_epoch``, ``engine``, ``tasker`` …)
    :return: ReproducibilityCheck: ``identical``; ``comparison`` (an
        :class:`ImageComparison`: the config fields and, per layer, the first files
        that differ and how: content, time, mode, owner; ``lines()`` for humans,
        ``to_dict()`` for JSON); ``first`` and ``second``, each build's BuildResults;
        ``results()`` the second's with the comparison in ``reproducibility``;
        ``raise_for_status()`` raises NotReproducible (exit code 7) when they differ
    :raises AtomicReactorError: a build that fails raises its error (nothing compared)
    """
    from atomic_reactor._reproducible import check_reproducible as check

    if delay < 0:
        from atomic_reactor.errors import InputError

        raise InputError("delay must be 0 or more seconds")
    tasker = kwargs.pop("tasker", None)
    request, _ = _request(source, image, parent_registry, None, parent_registry_insecure,
                          False, dont_pull_base_image, kwargs)
    return check(request, delay=delay, limit=limit, tasker=tasker)
