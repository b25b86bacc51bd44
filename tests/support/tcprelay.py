"""A TCP relay: ``python -m tests.support.tcprelay LISTEN_HOST:PORT TARGET_HOST:PORT``.

The farm tests run one in each worker namespace (its ``127.0.0.1:PORT`` relayed over
the veth pair to the host) and one on the host (the service address relayed to the
registry on the host's loopback), so an image reference ``127.0.0.1:PORT/...`` means
the same registry to the engine (host namespace, where loopback registries are
insecure by default) and to a worker's own registry calls (its namespace).
:func:`start_relay` runs one in a thread of the calling process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int],
                 ready: threading.Event | None = None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    if ready is not None:
        ready.set()
    else:
        print("relay ready", flush=True)
    async with server:
        await server.serve_forever()


def start_relay(listen: str, target: str) -> threading.Thread:
    """Relay in a daemon thread of this process (it ends with the process)."""
    ready = threading.Event()
    thread = threading.Thread(target=asyncio.run, args=(_serve(_split(listen), _split(target),
                                                               ready),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError(f"relay {listen} -> {target} did not start")
    return thread


if __name__ == "__main__":
    asyncio.run(_serve(_split(sys.argv[1]), _split(sys.argv[2])))
