"""Several "hosts" on one machine for the farm tests: network namespaces, Redis, workers.

:class:`FarmNet` makes ``count`` network namespaces ``arfarm<slot>-<n>``, each joined
to the host namespace by a veth pair (host ``10.231.<n>.1/24``, namespace
``10.231.<n>.2/24`` in slot 0, no default route), and a service address
(``10.231.0.1`` in slot 0) on the host, where Redis listens. Only
addresses in 10.231.0.0/16 are used. :class:`RedisServer` is a ``redis-server``
with append-only persistence in a directory of its own; :class:`Worker` is an
``atomic-reactor worker`` process in one namespace (its own process group, so a
test can ``kill -9`` the whole worker). Everything is removed by ``down()`` /
``stop()``, which the fixtures call also on failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["SERVICE_ADDRESS", "FarmNet", "RedisServer", "Worker", "free_redis_port"]

SERVICE_ADDRESS = "10.231.0.1"
"""The service address of slot 0 (see :attr:`FarmNet.service_address`)."""
REDIS_PORTS = range(6390, 6400)
_SLOTS = 16  # runs at once on one machine, each with its own names and addresses


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


class FarmNet:
    """``count`` namespaces joined to the host by veth pairs (see the module docs).

    Several runs may share a machine (two checkouts' test suites): each takes a free
    *slot* (an abstract socket it holds while it lives) and uses only that slot's
    names (``arfarm<slot>-<n>``) and addresses (``10.231.<16*slot+n>.0/24``, the
    service address ``10.231.<16*slot>.1``).
    """

    def __init__(self, count: int) -> None:
        if not 1 <= count <= _SLOTS - 1:
            raise ValueError(f"1..{_SLOTS - 1} namespaces")
        self.count = count
        self.slot = -1
        self._claim: socket.socket | None = None
        self._relays: list[subprocess.Popen[bytes]] = []

    def _take_slot(self) -> None:
        for slot in range(_SLOTS):
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                claim.bind(f"\0atomic-reactor-farmnet-{slot}")
            except OSError:
                claim.close()
                continue
            self.slot, self._claim = slot, claim
            return
        raise RuntimeError(f"all {_SLOTS} farm network slots are in use")

    @property
    def service_address(self) -> str:
        return f"10.231.{16 * self.slot}.1"

    def namespace(self, n: int) -> str:
        return f"arfarm{self.slot}-{n}"

    def host_address(self, n: int) -> str:
        return f"10.231.{16 * self.slot + n}.1"

    def address(self, n: int) -> str:
        return f"10.231.{16 * self.slot + n}.2"

    def _links(self, n: int) -> tuple[str, str]:
        return f"arf{self.slot}h{n}", f"arf{self.slot}n{n}"

    def up(self) -> FarmNet:
        self._take_slot()
        self._remove()  # what a crashed earlier run of this slot left (our own names only)
        try:
            host, peer = f"arf{self.slot}s0", f"arf{self.slot}s1"
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            _ip("addr", "add", f"{self.service_address}/32", "dev", host)
            _ip("link", "set", host, "up")
            _ip("link", "set", peer, "up")
            for n in range(1, self.count + 1):
                ns = self.namespace(n)
                outside, inside = self._links(n)
                _ip("netns", "add", ns)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside,
                    "netns", ns)
                _ip("addr", "add", f"{self.host_address(n)}/24", "dev", outside)
                _ip("link", "set", outside, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(n)}/24", "dev", inside)
                _ip("-n", ns, "link", "set", inside, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "route", "add", f"{self.service_address}/32", "via",
                    self.host_address(n))
        except BaseException:
            self.down()
            raise
        return self

    def relay(self, port: int) -> None:
        """Make ``127.0.0.1:port`` of every namespace the host's ``127.0.0.1:port`` (a
        registry, say), over the veth pairs and the service address."""
        root = Path(__file__).resolve().parents[2]
        module = [sys.executable, "-m", "tests.support.tcprelay"]
        service = self.service_address
        commands = [[*module, f"{service}:{port}", f"127.0.0.1:{port}"]]
        commands += [["ip", "netns", "exec", self.namespace(n), *module, f"127.0.0.1:{port}",
                      f"{service}:{port}"] for n in range(1, self.count + 1)]
        for command in commands:
            process = subprocess.Popen(command, cwd=root, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       start_new_session=True,
                                       preexec_fn=_die_with_parent)  # noqa: PLW1509
            self._relays.append(process)
            assert process.stdout is not None
            if process.stdout.readline().strip() != b"relay ready":
                raise RuntimeError(f"relay {' '.join(command[-2:])} did not start")

    def down(self) -> None:
        for process in self._relays:
            process.kill()
            process.wait(timeout=10)
        self._relays.clear()
        if self._claim is None:
            return
        self._remove()
        self._claim.close()
        self._claim = None

    def _remove(self) -> None:
        for n in range(1, self.count + 1):
            _ip("netns", "del", self.namespace(n), check=False)  # takes its veth along
            _ip("link", "del", self._links(n)[0], check=False)
        _ip("link", "del", f"arf{self.slot}s0", check=False)

    def __enter__(self) -> FarmNet:
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_redis_port(host: str) -> int:
    for port in REDIS_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {REDIS_PORTS.start}-{REDIS_PORTS.stop - 1} on {host}")


class RedisServer:
    """``redis-server`` on ``host:port`` with ``appendonly yes`` in ``workdir``."""

    def __init__(self, workdir: Path, host: str, port: int | None = None) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port or free_redis_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "redis.conf"
        self.config.write_text(
            f"bind {host}\nport {self.port}\ndir {workdir}\nappendonly yes\n"
            "appendfsync always\nsave \"\"\nprotected-mode no\ndaemonize no\n"
            f"logfile {workdir / 'redis.log'}\n")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 20) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen([binary, str(self.config)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True,
                                        preexec_fn=_die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / "redis.log").read_text().splitlines()[-10:])
        return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Worker:
    """``atomic-reactor worker`` in network namespace ``namespace`` (own process group)."""

    def __init__(self, name: str, namespace: str, broker: str, workdir: Path, *,
                 queues: Sequence[str] = (), platforms: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, visibility_timeout: float = 15,
                 engine: str | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.broker = broker
        self.workdir = workdir
        self.queues = list(queues)
        self.platforms = list(platforms)
        self.env = dict(env or {})
        self.visibility_timeout = visibility_timeout
        self.engine = engine
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir.parent / f"{name}.log"
        self._log_offset = 0

    @property
    def builds_dir(self) -> Path:
        return self.workdir

    def command(self) -> list[str]:
        command = ["ip", "netns", "exec", self.namespace, sys.executable, "-m",
                   "atomic_reactor", "worker", "--broker", self.broker, "--name", self.name,
                   "--workdir", str(self.workdir),
                   "--visibility-timeout", str(self.visibility_timeout)]
        if self.engine:
            command += ["--engine", self.engine]
        for queue in self.queues:
            command += ["--queue", queue]
        for platform in self.platforms:
            command += ["--platform", platform]
        return command

    def start(self, ready_timeout: float = 60) -> Worker:
        self.launch()
        return self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float = 60) -> Worker:
        self.wait_for_log(f"{self.name}@", "ready.", timeout=timeout)
        return self

    def launch(self) -> None:
        """Start the process (without waiting for it to be ready)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        env.pop("ATOMIC_REACTOR_BROKER", None)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)  # noqa: PLW1509

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for_log(self, *parts: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if all(p in line for p in parts):
                    return line
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited ({self.process.returncode}):\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name}: no log line with {parts} within {timeout}s:\n"
                           f"{self.log()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """``kill -9`` of the whole worker: its main process and every pool process."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: the main process only
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # pool processes left behind
