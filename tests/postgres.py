"""A real PostgreSQL server for tests: Debian's binaries, a temp data directory, a free
loopback port, its own non-root user (``initdb`` refuses to run as root).

``make test`` installs Debian's ``postgresql`` package; where it is missing the tests
that need a server skip and say why (:func:`find_bin_dir`).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.loopback import free_port

__all__ = ["PG_USER", "PostgresServer", "find_bin_dir", "unavailable_reason"]

PG_USER = "harness-pg"  # the OS user the server runs as when the tests run as root
SUPERUSER = "harness"  # the database superuser initdb creates


def find_bin_dir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin (not on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _os_user() -> str | None:
    """The user to run the server as: ours when we are not root, else a system user of
    its own (created once)."""
    if os.geteuid() != 0:
        return None
    if not _user_exists():
        # Test workers start at once: another may be creating the user right now (then
        # this useradd fails on "exists" or on the passwd lock), so the result is the user
        # being there, not useradd's exit code.
        for _ in range(50):
            result = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 PG_USER],
                capture_output=True,
                text=True,
            )  # fmt: skip
            if _user_exists():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cannot create the user {PG_USER}: {result.stderr.strip()}")
    return PG_USER


def _user_exists() -> bool:
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return False
    return True


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None."""
    if find_bin_dir() is None:
        return (
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "`make test` installs Debian's postgresql package"
        )
    if os.geteuid() == 0 and shutil.which("useradd") is None:
        return "running as root without useradd: no user to run PostgreSQL as"
    return None


class PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; ``url(db)`` for a database."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(unavailable_reason() or "PostgreSQL is not installed")
        self.bin_dir = bin_dir
        self.user = _os_user()
        self.password = secrets.token_hex(12)
        # Not under pytest's tmp dir: that is private to root, and the server's user must
        # reach its data directory.
        self.root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._databases = 0

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        if self.user is not None:
            shutil.chown(self.root, self.user)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self.user is not None:
            shutil.chown(pwfile, self.user)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        # A port picked free can be taken before the server binds it (another worker):
        # the log says so, and another free port is tried.
        for _ in range(5):
            self.port = free_port()
            if self._pg_ctl_start():
                return self
            if "could not bind" not in self.log.read_text(errors="replace"):
                break
        raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text(errors='replace')}")

    def _pg_ctl_start(self) -> bool:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                # A test server: durability is not what is under test, speed is welcome.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
                "-c max_connections=60",
            ]
        )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start", check=False,
        )  # fmt: skip
        return result.returncode == 0

    def stop(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False
        )

    def restart(self) -> None:
        """Start again on the same port (after :meth:`stop`)."""
        if not self._pg_ctl_start():
            raise RuntimeError(
                f"PostgreSQL did not restart:\n{self.log.read_text(errors='replace')}"
            )

    def create_database(self, prefix: str = "t") -> str:
        """A fresh database's URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result
