"""Fixtures for integration tests: a real engine, throw-away registries, a base image.

The engine under test is ONE parameter: ``pytest --engine docker|buildah`` or
``AR_TEST_ENGINE`` (default docker), the session fixture ``engine_name``. With
buildah, the library's default engine is buildah (``ATOMIC_REACTOR_ENGINE``), the
test registries are plain-HTTP registries for it (a registries.conf, as dockerd
treats loopback registries), ``base_image`` and ``engine_cleanup`` work on
buildah's storage, and only tests marked ``both_engines`` (plus those under
``tests/integration/buildah/``) run; under docker, those buildah-only tests are
left out.

Session scope: ``engine`` (docker ``APIClient``, docker only), ``tasker`` (a
``DockerTasker`` for the engine under test), ``registry`` (open),
``auth_registry`` (htpasswd), ``base_image`` (busybox pushed to ``registry``).
Function scope: ``engine_cleanup`` (autouse: removes what each test created),
``tmp_cleanup`` (autouse: fails a test that leaves ``atomic-reactor-*`` in the
temporary directory),
``docker_config`` (DOCKER_CONFIG with credentials for ``auth_registry``) and
``workdir``.  Every test below this directory is marked ``integration``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from atomic_reactor.core import DockerTasker
from tests.integration.helpers import Outcome, run_cli, unique
from tests.support.buildah_env import (
    BuildahTracker,
    buildah_available,
    ensure_buildah_base_image,
    insecure_registries_conf,
    push_buildah_base_image,
)
from tests.support.env import (
    BASE_IMAGE,
    BaseImage,
    EngineTracker,
    EngineUnavailableError,
    EnvError,
    Registry,
    docker_config_json,
    engine_client,
    ensure_base_image,
    ensure_engine,
    fail_on_leftovers,
    push_base_image,
    split_reference,
    start_registry,
)
from tests.support.tracker import Tracker

_HERE = Path(__file__).resolve().parent


_BUILDAH_ONLY = _HERE / "buildah"
#: engine-neutral test files (relative to this directory): run against both engines, as
#: if each of their tests were marked both_engines
ENGINE_NEUTRAL = (
    "hostile/test_dockerfile_input.py",
    "hostile/test_secrets.py",
    "output/test_log_file.py",
    "output/test_metadata.py",
    "plugins/test_add_dockerfile.py",
    "plugins/test_add_help.py",
    "plugins/test_add_labels_in_dockerfile.py",
    "plugins/test_all_rpm_packages.py",
    "plugins/test_assert_labels.py",
    "plugins/test_bump_release.py",
    "plugins/test_change_from_in_dockerfile.py",
    "plugins/test_compress.py",
    "plugins/test_cp_built_image_to_nfs.py",
    "plugins/test_delete_from_registry.py",
    "plugins/test_distgit_fetch_artefacts.py",
    "plugins/test_distribution_scope.py",
    "plugins/test_inject_yum_repo.py",
    "plugins/test_remove_built_image.py",
    "plugins/test_sendmail.py",
    "plugins/test_squash.py",
    "plugins/test_store_logs_to_file.py",
    "plugins/test_stop_autorebuild_if_disabled.py",
    "plugins/test_store_metadata.py",
    "plugins/test_tag_by_labels.py",
    "plugins/test_tag_from_config.py",
    "plugins/test_test_built_image.py",
    "test_cli.py",
    "test_compat16.py",
    "test_push.py",
    "test_tasker.py",
    "test_workflow.py",
)
#: tests of those files that check what only docker does (its SDK, its socket)
DOCKER_ONLY = (
    # a 1.6 plugin file exporting through tasker.d (the docker SDK client, None elsewhere)
    "test_1_6_plugin_file_in_a_build_that_pushes",
    "test_engine_not_running_names_the_socket",  # a docker socket (base_url) that is absent
    "test_a_docker_build_imports_neither_the_docker_sdk_nor_requests",  # the docker backend
    "test_run_honours_the_sdk_keywords_of_1_6",  # the Docker SDK's keyword arguments
    "test_a_build_pulls_its_base_with_the_docker_config_credentials",  # X-Registry-Config
)


def selected_engine(config: pytest.Config) -> str:
    chosen = config.getoption("--engine", default=None) or os.environ.get("AR_TEST_ENGINE")
    chosen = chosen or "docker"
    if chosen not in ("docker", "buildah"):
        raise pytest.UsageError(f"AR_TEST_ENGINE={chosen!r}: expected docker or buildah")
    return chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark integration tests; keep only those of the engine under test (the others are
    deselected, not skipped: each engine's pass reports only its own tests)."""
    engine = selected_engine(config)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(_HERE):
            kept.append(item)
            continue
        item.add_marker(pytest.mark.integration)
        if str(path.relative_to(_HERE)) in ENGINE_NEUTRAL and \
                getattr(item, "originalname", item.name) not in DOCKER_ONLY:
            item.add_marker(pytest.mark.both_engines)
        in_buildah_dir = path.is_relative_to(_BUILDAH_ONLY)
        if engine == "buildah":
            wanted = in_buildah_dir or item.get_closest_marker("both_engines") is not None
        else:
            wanted = not in_buildah_dir
        (kept if wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def engine_name(request: pytest.FixtureRequest) -> str:
    """The engine under test: "docker" or "buildah"."""
    return selected_engine(request.config)


@pytest.fixture(scope="session", autouse=True)
def _engine_environment(
    engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With buildah: the library's default engine is buildah, the test registries are
    plain HTTP for it; both for this process and the CLI subprocesses."""
    if engine_name != "buildah":
        yield
        return
    if not buildah_available():
        pytest.fail("buildah is not installed; run `bash scripts/ensure-env.sh`", pytrace=False)
    registries = [request.getfixturevalue("registry"), request.getfixturevalue("auth_registry")]
    conf = insecure_registries_conf(tmp_path_factory.mktemp("containers") / "registries.conf",
                                    registries)
    saved = {key: os.environ.get(key) for key in ("ATOMIC_REACTOR_ENGINE",
                                                  "CONTAINERS_REGISTRIES_CONF")}
    os.environ["ATOMIC_REACTOR_ENGINE"] = "buildah"
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.APIClient]:
    """The container engine (docker SDK low-level client); fails if none answers."""
    try:
        ensure_engine()
    except EngineUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    client = engine_client()
    try:
        yield client.api
    finally:
        client.close()


@pytest.fixture(scope="session")
def tasker(engine_name: str, request: pytest.FixtureRequest) -> Iterator[DockerTasker]:
    """A ``DockerTasker`` for the engine under test (what tests use to look at images
    and run containers, engine-neutral; see :mod:`tests.support.images`)."""
    if engine_name == "docker":
        request.getfixturevalue("engine")  # fails clearly when dockerd does not answer
    made = DockerTasker(engine=engine_name)
    try:
        yield made
    finally:
        made.close()


def _start(factory: pytest.TempPathFactory, name: str, auth: bool) -> Iterator[Registry]:
    try:
        running = start_registry(factory.mktemp(name), auth=auth)
    except EnvError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield running.registry
    finally:
        running.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An open registry on ``127.0.0.1:<free port>`` (plain HTTP, no auth)."""
    yield from _start(tmp_path_factory, "registry", auth=False)


@pytest.fixture(scope="module")
def more_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Registry]]:
    """Two more open registries (so a push can go to three), for one test module."""
    running = [start_registry(tmp_path_factory.mktemp(f"more-registry-{n}")) for n in (1, 2)]
    try:
        yield [one.registry for one in running]
    finally:
        for one in running:
            one.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry requiring basic auth: ``username`` "tester", random ``password``."""
    yield from _start(tmp_path_factory, "auth-registry", auth=True)


@pytest.fixture(scope="session")
def base_image(engine_name: str, request: pytest.FixtureRequest, registry: Registry
               ) -> BaseImage:
    """The busybox base image, local as ``.local`` and pushed to ``registry`` (in the
    engine under test)."""
    try:
        if engine_name == "buildah":
            image_id = "sha256:" + ensure_buildah_base_image(BASE_IMAGE)
            push_buildah_base_image(registry, BASE_IMAGE)
        else:
            request.getfixturevalue("engine")
            image_id = ensure_base_image(BASE_IMAGE)
            push_base_image(registry, BASE_IMAGE)
    except EnvError as exc:
        pytest.fail(str(exc), pytrace=False)
    repository, tag = split_reference(BASE_IMAGE)
    return BaseImage(
        local=BASE_IMAGE, registry=registry, repo=f"{repository}:{tag}", image_id=image_id
    )


@pytest.fixture(autouse=True)
def engine_cleanup(engine_name: str, request: pytest.FixtureRequest) -> Iterator[Tracker]:
    """Snapshot the engine under test before the test; remove containers/tags/images
    created by it (an :class:`EngineTracker` on docker, a :class:`BuildahTracker` on
    buildah: the same :class:`~tests.support.tracker.Tracker`).

    Tests may register extra objects with ``engine_cleanup.track_image(ref)`` and
    ``engine_cleanup.track_container(id)``.  Anything that cannot be removed fails the
    test (``EngineLeftoversError`` at teardown).
    """
    tracker: Tracker
    if engine_name == "buildah" or request.node.path.resolve().is_relative_to(_BUILDAH_ONLY):
        tracker = BuildahTracker(protected=[BASE_IMAGE])
        where = f"{request.node.nodeid} (buildah storage)"
    else:
        tracker = EngineTracker(request.getfixturevalue("engine"), protected=[BASE_IMAGE])
        where = request.node.nodeid
    tracker.snapshot()
    yield tracker
    fail_on_leftovers(tracker.cleanup(), where)


#: what the library keeps in the temporary directory on purpose (its lock files)
_KEPT_IN_TMP = frozenset({"atomic-reactor-locks"})


def _ours_in_tmp() -> set[str]:
    tmp = tempfile.gettempdir()
    return {name for name in os.listdir(tmp)
            if name.startswith("atomic-reactor-") and name not in _KEPT_IN_TMP}


@pytest.fixture(autouse=True)
def tmp_cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """What the library made in the temporary directory during the test (``atomic-
    reactor-*``) and is still there after it fails the test; it is removed (the next
    test starts clean). A test that keeps such a path (an archive a result names)
    removes it itself."""
    before = _ours_in_tmp()
    yield
    left = sorted(_ours_in_tmp() - before)
    for name in left:
        path = os.path.join(tempfile.gettempdir(), name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if left:
        pytest.fail(f"{request.node.nodeid}: left in {tempfile.gettempdir()}: "
                    f"{', '.join(left)}", pytrace=False)


@pytest.fixture
def docker_config(
    auth_registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A DOCKER_CONFIG directory whose config.json (0600) holds auth for ``auth_registry``.

    ``DOCKER_CONFIG`` points to it for the duration of the test.
    """
    directory = tmp_path_factory.mktemp("docker-config")
    directory.chmod(0o700)
    config = directory / "config.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(docker_config_json([auth_registry]))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    try:
        yield directory  # monkeypatch restores DOCKER_CONFIG after the test
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # it holds the password


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh per-test working directory."""
    return tmp_path


# -- the command line, and what it leaves behind -------------------------------------


def _engine_objects(engine_name: str, request: pytest.FixtureRequest
                    ) -> tuple[set[str], set[str]]:
    """(container ids, image ids) the engine under test has now."""
    if engine_name == "buildah":
        state = BuildahTracker(exclusive=False).state()
        return set(state.container_ids), set(state.image_ids)
    engine: docker.APIClient = request.getfixturevalue("engine")
    return ({c["Id"] for c in engine.containers(all=True)},
            {i["Id"] for i in engine.images(all=True)})


@pytest.fixture
def cli(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
        ) -> Callable[..., Outcome]:
    """Run ``atomic-reactor`` with a TMPDIR of its own; list what it left there and in
    the engine under test (containers, images)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        tmp = tmp_path / f"tmpdir-{unique()}"
        tmp.mkdir()
        containers, images = _engine_objects(engine_name, request)
        done = run_cli(list(args), env={"TMPDIR": str(tmp), **(env or {})})
        leftovers = sorted(p.name for p in tmp.iterdir() if p.name != "atomic-reactor-locks")
        containers_after, images_after = _engine_objects(engine_name, request)
        return Outcome(
            code=done.returncode, stdout=done.stdout, stderr=done.stderr,
            tmp_leftovers=leftovers,
            new_containers=sorted(containers_after - containers),
            new_images=sorted(images_after - images),
        )

    return run
