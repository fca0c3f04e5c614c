from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from harness.sandbox import SandboxSettings, create_app
from tests.harness.sandbox.bodies import API_KEY


@pytest.fixture
def settings() -> SandboxSettings:
    return SandboxSettings()


@pytest.fixture
def app(settings: SandboxSettings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client with an API key that keeps no cookies between requests."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers={"x-api-key": API_KEY}
    ) as client:

        async def forget_cookies(response: httpx.Response) -> None:
            # Runs after httpx stored the response's cookies: each request goes out fresh.
            client.cookies.clear()

        client.event_hooks = {"request": [], "response": [forget_cookies]}
        yield client
