"""The farm test set-up: Redis and three workers, each worker in a network namespace of
its own (see tests/support/farmnet.py), building with the host's engine through its
socket and pushing to the session's registries."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor.farm._payload import generate_key
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry, docker_config_json
from tests.support.farmnet import FarmNet, RedisServer, Worker

WORKERS = 3
VISIBILITY_TIMEOUT = 15.0


@dataclass
class Farm:
    net: FarmNet
    redis: RedisServer
    workers: list[Worker]
    root: Path
    key_file: Path
    docker_config: Path
    base: BaseImage
    registry: Registry
    auth_registry: Registry
    extra: list[Worker] = field(default_factory=list)

    @property
    def broker(self) -> str:
        return self.redis.url

    def worker(self, name: str) -> Worker:
        return next(w for w in self.workers + self.extra if w.name == name)

    def ensure_workers(self) -> None:
        """Start again the workers a test stopped or killed."""
        stopped = [w for w in self.workers if not w.alive]
        for worker in stopped:
            worker.launch()
        for worker in stopped:
            worker.wait_ready()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a submitter (no key, no credentials unless given)."""
        return {"ATOMIC_REACTOR_BROKER": self.broker, **extra}

    def build_json(self, directory: Path, dockerfile: str, files: dict[str, str] | None = None,
                   *, image: str | None = None, registry: Registry | None = None,
                   **extra: Any) -> tuple[Path, str]:
        """A path-source build json pushing to the registry; (its path, the image)."""
        image = image or f"{unique('farm')}:1"
        context = write_context(directory / "context", dockerfile.replace(
            "BASE", self.base.pushed), files)
        target = registry or self.registry
        data = {"source": path_source(context), "image": image,
                "target_registries": [target.address], **extra}
        path = directory / "build.json"
        path.write_text(json.dumps(data))
        return path, image


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, base_image: BaseImage, registry: Registry,
         auth_registry: Registry) -> Iterator[Farm]:
    if os.geteuid() != 0:
        pytest.skip("the farm tests make network namespaces (root)")
    root = tmp_path_factory.mktemp("farm")
    key_file = root / "farm.key"
    key_file.write_text(generate_key() + "\n")
    key_file.chmod(0o600)
    docker_config = root / "docker-config"
    docker_config.mkdir(mode=0o700)
    (docker_config / "config.json").write_text(docker_config_json([auth_registry]))
    net = FarmNet(WORKERS + 1).up()
    redis: RedisServer | None = None
    workers: list[Worker] = []
    try:
        for reachable in (registry, auth_registry):  # as 127.0.0.1:PORT in the namespaces too
            net.relay(reachable.port)
        redis = RedisServer(root / "redis", net.service_address).start()
        env = {"ATOMIC_REACTOR_FARM_KEY_FILE": str(key_file),
               "DOCKER_CONFIG": str(docker_config)}
        for n in range(1, WORKERS + 1):
            platforms = ["linux/amd64", "linux/arm64"] if n == WORKERS else []
            workers.append(Worker(f"w{n}", net.namespace(n), redis.url, root / f"w{n}",
                                  queues=["atomic-reactor", f"solo-{n}"], platforms=platforms,
                                  env=env, visibility_timeout=VISIBILITY_TIMEOUT))
        for worker in workers:
            worker.launch()
        for worker in workers:
            worker.wait_ready()
        farm = Farm(net, redis, workers, root, key_file, docker_config, base_image, registry,
                    auth_registry)
        yield farm
    finally:
        for worker in workers + (farm.extra if "farm" in locals() else []):
            worker.stop()
        if redis is not None:
            redis.remove()
        net.down()
        shutil.rmtree(docker_config, ignore_errors=True)


@pytest.fixture
def live_farm(farm: Farm) -> Farm:
    """The farm with all its workers running."""
    farm.ensure_workers()
    return farm
