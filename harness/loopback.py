"""Run an ASGI app on a real uvicorn server bound to loopback, in a background thread.

Tests, the demo and the shadow harness need real sockets where streaming or timing
matters (``httpx.ASGITransport`` buffers whole bodies and skips the lifespan).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["PROVIDER_KEEP_ALIVE_SECONDS", "LoopbackServer", "free_port"]


# How long the servers here keep an idle keep-alive connection: as long as a provider's
# edge does (Cloudflare, in front of Anthropic's and OpenAI's APIs: 400 s for HTTP/1.1).
# The proxy's upstream pool reuses an idle connection for up to 120 s; at uvicorn's 5 s
# default the sandbox closed connections the proxy was reusing at that instant, and a
# burst after a pause failed with "Cannot write to closing transport" (503).
PROVIDER_KEEP_ALIVE_SECONDS = 400


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """A uvicorn server for ``app`` on 127.0.0.1, started and stopped as a context manager."""

    def __init__(
        self, app: Any, port: int = 0, *, host: str = "127.0.0.1", startup_timeout: float = 30.0
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            timeout_keep_alive=PROVIDER_KEEP_ALIVE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only on the main thread; the owner of this
        # one stops it through should_exit.
        self._thread = threading.Thread(
            target=self._server.run, name=f"uvicorn:{self.port}", daemon=True
        )
        self._startup_timeout = startup_timeout

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"server on port {self.port} not ready in {self._startup_timeout}s"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
