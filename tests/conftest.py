"""Shared fixtures: real servers on loopback (sandbox provider, SDK proxy)."""

from __future__ import annotations

# Every process that imports litellm must not reach for the network at import.
from memory_proxy.litellm_env import keep_litellm_offline  # noqa: E402

keep_litellm_offline()

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from harness.loopback import LoopbackServer  # noqa: E402
from harness.sandbox import SandboxSettings, create_app  # noqa: E402
from harness.sandbox.client import SandboxControl  # noqa: E402
from harness.sandbox.config_file import write_sandbox_config  # noqa: E402
from tests.postgres import PostgresServer, unavailable_reason  # noqa: E402

MASTER_KEY = "sk-proxy-sandbox-master-7f3a9c"  # config/sandbox.yaml's


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's), one per test worker; skipped where missing."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh database on the session's server."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app(SandboxSettings())) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: LoopbackServer) -> Iterator[SandboxControl]:
    """The shared sandbox, reset (captures, cookies, faults) before and after each test:
    a fault rate left set would reach the next test on the worker that uses the server
    without this fixture."""
    with SandboxControl(sandbox_server.url) as control:
        control.reset()
        yield control
        control.reset()


@pytest.fixture(scope="session")
def sandbox_config_path(
    sandbox_server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """config/sandbox.yaml pointed at the test sandbox, with fast retries."""
    extra = (
        "memory_proxy:\n  max_body_bytes: 65536\n  shutdown_grace_seconds: 5\n"
        "  retry_backoff_seconds: 0.05\n"
    )
    return write_sandbox_config(
        sandbox_server.url, tmp_path_factory.mktemp("config") / "sandbox.yaml", extra=extra
    )


@pytest.fixture(scope="session")
def sdk_proxy(sandbox_config_path: Path) -> Iterator[LoopbackServer]:
    from memory_proxy.app import create_app as create_proxy_app
    from memory_proxy.config import load_config

    with LoopbackServer(create_proxy_app(load_config(sandbox_config_path))) as server:
        yield server


# The legacy architecture: the real LiteLLM server and the legacy proxy in front of it.
from harness.loopback import free_port  # noqa: E402
from memory_proxy.litellm_server import LiteLLMServer  # noqa: E402


@pytest.fixture(scope="session")
def litellm_server(
    sandbox_config_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiteLLMServer]:
    """The real LiteLLM server on the sandbox config: started once (~13 s) per session."""
    log_path = tmp_path_factory.mktemp("litellm-server") / "litellm.log"
    # ~13 s to ready alone; a parallel run on 2 cores can take several times that.
    with LiteLLMServer(
        sandbox_config_path, port=free_port(), log_path=log_path, ready_timeout=180
    ) as server:
        yield server


@pytest.fixture(scope="session")
def legacy_proxy(
    sandbox_config_path: Path, litellm_server: LiteLLMServer
) -> Iterator[LoopbackServer]:
    """The legacy proxy in-process, forwarding to the session's LiteLLM server."""
    from memory_proxy.config import load_config
    from memory_proxy.legacy_proxy import create_legacy_app

    app = create_legacy_app(load_config(sandbox_config_path), litellm_server.url)
    with LoopbackServer(app) as server:
        yield server


# Starting the real LiteLLM server takes ~13 s: every test that needs one is slow.
_SLOW_FIXTURES = frozenset({"litellm_server", "legacy_proxy"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``-m "not slow"`` (``make check``) leaves out the tests that start process stacks.

    Those tests also share one xdist group: with ``--dist loadgroup`` (``make test``) one
    worker starts the session's LiteLLM server, not each of them (a start costs ~13 s of
    CPU, and the suite is CPU-bound on two cores)."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("litellm-server"))
    # xdist hands out work in collection order: the longest test first. In file order the
    # demo (~200 s) started ~220 s into the run and was its tail. Everything else keeps
    # file order, so a module's tests still meet their module's server in the order they
    # were written for.
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)
