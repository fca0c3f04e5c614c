"""Run one server as a child process: port check, spawn, readiness, log tail, group stop.

``ChildProcess`` is the mechanism the LiteLLM server launcher and the ``up`` supervisor
share. It refuses a port that is already taken before spawning anything, starts the
child in its own session (so a Ctrl-C aimed at the terminal does not reach it first, and
a stop reaches every worker it forks), sends its stdout and stderr to a log file, and
blocks until ``GET <ready_path>`` answers 200. A child that exits during start-up, or is
not ready in time, fails the start with :class:`ProcessStartError` quoting its exit code
and the last lines of its log; nothing is left running.

A subclass prepares what its child needs in :meth:`ChildProcess._prepare` (before the port
check) and :meth:`ChildProcess._spawn`, and names its own ``start_error`` type; the
``spawn`` argument stands in for ``subprocess.Popen``, so a test can see (or refuse) what
would be started without starting it.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

__all__ = [
    "DEFAULT_READY_PATH",
    "LOG_TAIL_LINES",
    "ChildProcess",
    "ProcessStartError",
    "Spawn",
    "ensure_port_free",
]

logger = logging.getLogger(__name__)

DEFAULT_READY_PATH = "/health/liveliness"
LOG_TAIL_LINES = 30
_POLL_SECONDS = 0.1

# What starts the child: subprocess.Popen, called with the argv and Popen's keywords.
Spawn = Callable[..., "subprocess.Popen[bytes]"]


class ProcessStartError(Exception):
    """A child process could not be started or did not become ready.

    ``exit_code`` is set when the child exited during start-up; ``log_tail`` holds the
    last lines it wrote (both empty when it never ran).
    """

    def __init__(
        self, message: str, *, exit_code: int | None = None, log_tail: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = tuple(log_tail)


def ensure_port_free(
    host: str, port: int, kind: str, error_type: type[ProcessStartError] = ProcessStartError
) -> None:
    """Raise ``error_type`` (a :class:`ProcessStartError`) naming ``port`` and ``kind`` if
    it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Same option uvicorn binds with, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise error_type(
                f"port {port} on {host} is already in use; "
                f"cannot start the {kind} there ({error.strerror})"
            ) from error


class ChildProcess:
    """One server process, started with :meth:`start` and stopped with its whole group.

    ``name`` is what the process is, in words ("LiteLLM server", "legacy proxy"): every
    message about it uses it. ``env`` is layered over ``os.environ`` for the child only
    (a None value removes the variable).
    Output is appended to ``log_path``; :meth:`log_tail` reads only this run's part.
    ``context`` is added to start-failure messages before the log lines (e.g. which
    config the child was given). ``spawn`` starts the child (``subprocess.Popen``).
    """

    # What a failed start raises: a subclass names its own, so callers catch it by kind.
    start_error: ClassVar[type[ProcessStartError]] = ProcessStartError

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        log_path: Path,
        host: str = "127.0.0.1",
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        ready_path: str = DEFAULT_READY_PATH,
        ready_timeout: float = 60.0,
        context: str = "",
        spawn: Spawn = subprocess.Popen,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.cwd = cwd
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.context = context
        self.spawn = spawn
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._finalizer: weakref.finalize | None = None

    # -- inspection -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id), once spawned."""
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (and been polled), else None."""
        return self._process.returncode if self._process is not None else None

    def poll(self) -> int | None:
        """Reap the child if it has exited; its exit code, or None while it runs."""
        return self._process.poll() if self._process is not None else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``lines`` lines the child wrote to its log in this run (none before it)."""
        if self._process is None:
            return []
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:] if lines > 0 else []

    # -- lifecycle --------------------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        """``os.environ`` with ``env`` layered over it: what the child gets."""
        merged: dict[str, str | None] = {**os.environ, **self.env}
        return {name: value for name, value in merged.items() if value is not None}

    def check_port(self) -> None:
        ensure_port_free(self.host, self.port, self.name, self.start_error)

    def start(self) -> Self:
        """Spawn the child and block until ``ready_path`` answers 200."""
        if self._process is not None and self._process.poll() is None:
            raise self.start_error(f"{self.name} already running (pid {self._process.pid})")
        self._prepare()
        self.check_port()
        started = time.monotonic()
        try:
            self._spawn()
            self._wait_until_ready()
        except BaseException:
            # Leave no half-started process group behind, whatever interrupted the start.
            self.stop(grace=2.0)
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info("%s ready at %s in %.1f s", self.name, self.url, self.startup_seconds)
        return self

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
        if self._process is not None:
            _terminate_group(self._process, grace, self.name)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Check and settle what the child needs, before its port is checked; may raise."""

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._process = self.spawn(
                self.argv,
                cwd=self.cwd,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: stop() reaches any workers it forks, and a Ctrl-C aimed at
                # the parent's terminal does not hit it before the parent decides the order.
                start_new_session=True,
            )
        # If the owner forgets stop(), do not leave a server listening after exit.
        self._finalizer = weakref.finalize(self, _signal_group, self._process.pid, signal.SIGKILL)
        logger.info(
            "started %s (pid %d): %s (log: %s)",
            self.name,
            self._process.pid,
            " ".join(self.argv),
            self.log_path,
        )

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                raise self._start_error(
                    f"{self.name} exited during start-up with exit code {exit_code}", exit_code
                )
            if _answers_200(self.host, self.port, self.ready_path):
                return
            if time.monotonic() > deadline:
                raise self._start_error(
                    f"{self.name} (pid {self._process.pid}) not ready at "
                    f"{self.url}{self.ready_path} within {self.ready_timeout:.0f} s",
                    None,
                )
            time.sleep(_POLL_SECONDS)

    def _start_error(self, summary: str, exit_code: int | None) -> ProcessStartError:
        tail = self.log_tail()
        context = f"\n{self.context}" if self.context else ""
        return self.start_error(
            f"{summary}{context}\nlast {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail),
            exit_code=exit_code,
            log_tail=tail,
        )


def _answers_200(host: str, port: int, path: str) -> bool:
    # http.client rather than httpx/urllib: no proxy environment variables apply here.
    connection = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _terminate_group(process: subprocess.Popen[bytes], grace: float, name: str) -> None:
    pgid = process.pid  # start_new_session=True made it the group leader
    if process.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) ignored SIGTERM for %.0f s; killing", name, pgid, grace)
    # Workers it forked may outlive the leader; the group id stays theirs while any is alive.
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
