"""Every API route of both proxies asks for the master key; nothing public leaks secrets.

The routes are enumerated from the apps themselves, so a route added later without auth
fails here instead of shipping open.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from memory_proxy.app import create_app
from memory_proxy.config import ProxyConfig, load_config
from memory_proxy.legacy_proxy import create_legacy_app
from tests.conftest import MASTER_KEY

PUBLIC_PATHS = ("/health", "/health/liveliness", "/health/readiness", "/memory-routing/info")
WRONG_KEY = "sk-proxy-sandbox-master-7f3a9d"  # one character off the real one
# What a parametric route (the legacy proxy's catch-all) is tried with, where it matches.
SAMPLE_PATHS = (
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/models",
    "/v1/embeddings",
    "/v1/responses",
)


def _is_api_path(path: str) -> bool:
    return path.startswith("/v1/") or path in ("/chat/completions", "/models")


def _concrete_paths(route: APIRoute) -> list[str]:
    if "{" not in route.path:
        return [route.path] if _is_api_path(route.path) else []
    return [p for p in SAMPLE_PATHS if route.path_regex.fullmatch(p)]


def _api_calls(app: FastAPI) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            calls.extend((method, path) for path in _concrete_paths(route))
    return calls


@pytest.fixture(scope="module")
def config(sandbox_config_path: Path) -> ProxyConfig:
    return load_config(sandbox_config_path)


@pytest.fixture(scope="module")
def sdk_app(config: ProxyConfig) -> FastAPI:
    return create_app(config)


@pytest.fixture(scope="module")
def legacy_app(config: ProxyConfig) -> FastAPI:
    # Auth is checked before anything is forwarded: port 1 must never be reached.
    return create_legacy_app(config, "http://127.0.0.1:1")


@pytest.fixture(scope="module", params=["sdk", "legacy"])
def app(request: pytest.FixtureRequest, sdk_app: FastAPI, legacy_app: FastAPI) -> FastAPI:
    return sdk_app if request.param == "sdk" else legacy_app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # No lifespan: a request that gets past auth would fail loudly, not pass quietly.
    yield TestClient(app, raise_server_exceptions=False)


def _wrong_key_headers(path: str) -> dict[str, str]:
    if path.startswith("/v1/messages"):
        return {"x-api-key": WRONG_KEY, "anthropic-version": "2023-06-01"}
    return {"authorization": f"Bearer {WRONG_KEY}"}


def _assert_auth_error(path: str, reply: Any) -> None:
    assert reply.status_code == 401, (path, reply.status_code, reply.text)
    body = reply.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error"
        assert body["error"]["type"] == "authentication_error"
    else:
        assert body["error"]["type"] == "authentication_error"
        assert "type" not in body
    assert MASTER_KEY not in reply.text and WRONG_KEY not in reply.text


def test_the_apps_expose_the_expected_api_routes(sdk_app: FastAPI, legacy_app: FastAPI) -> None:
    sdk = set(_api_calls(sdk_app))
    assert {
        ("POST", "/v1/chat/completions"),
        ("POST", "/chat/completions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("GET", "/v1/models"),
        ("GET", "/models"),
    } <= sdk
    assert ("DELETE", "/v1/chat/completions") in set(_api_calls(legacy_app))


def test_every_api_route_refuses_a_missing_or_wrong_key(app: FastAPI, client: TestClient) -> None:
    calls = _api_calls(app)
    assert calls
    body = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
    for method, path in calls:
        content = body if method in ("POST", "PUT", "PATCH") else None
        json_type = {"content-type": "application/json"}
        missing = client.request(method, path, content=content, headers=json_type)
        _assert_auth_error(path, missing)
        wrong = client.request(
            method, path, content=content, headers={**json_type, **_wrong_key_headers(path)}
        )
        _assert_auth_error(path, wrong)
        # The other header style, and an empty bearer, are refused the same way.
        other = (
            {"authorization": f"Bearer {WRONG_KEY}"}
            if path.startswith("/v1/messages")
            else {"x-api-key": WRONG_KEY}
        )
        _assert_auth_error(path, client.request(method, path, content=content, headers=other))
        empty = {"authorization": "Bearer "}
        _assert_auth_error(path, client.request(method, path, content=content, headers=empty))


def test_a_key_prefix_or_extension_is_refused(client: TestClient) -> None:
    for guess in (MASTER_KEY[:-1], MASTER_KEY + "0", MASTER_KEY.upper(), f"{MASTER_KEY} x"):
        reply = client.get("/v1/models", headers={"authorization": f"Bearer {guess}"})
        assert reply.status_code == 401
        reply = client.get("/v1/models", headers={"x-api-key": guess})
        assert reply.status_code == 401
    for scheme in ("Basic", "Token", ""):
        reply = client.get("/v1/models", headers={"authorization": f"{scheme} {MASTER_KEY}"})
        assert reply.status_code == 401


def _forbidden_strings(config: ProxyConfig) -> list[str]:
    values = set(config.secrets)
    for deployment in config.deployments:
        if deployment.api_base:
            values.add(deployment.api_base)
            values.add(deployment.api_base.split("/v3/")[0])  # the host part alone
        values.update(v for v in deployment.extra_headers.values() if v)
    return sorted(values)


def test_public_endpoints_never_echo_credentials_or_upstreams(
    client: TestClient, config: ProxyConfig
) -> None:
    forbidden = _forbidden_strings(config)
    assert MASTER_KEY in forbidden and any(v.startswith("http://127.0.0.1:") for v in forbidden)
    presented = {
        "authorization": f"Bearer {MASTER_KEY}",
        "x-api-key": MASTER_KEY,
        "x-supermemory-api-key": "sm-sandbox-0000000000000000",
    }
    for path in PUBLIC_PATHS:
        for headers in ({}, presented):
            reply = client.get(path, headers=headers)
            assert reply.status_code == 200, (path, reply.text)
            text = reply.text + "".join(f"{k}: {v}" for k, v in reply.headers.items())
            leaked = [value for value in forbidden if value in text]
            assert not leaked, (path, leaked)


def test_the_key_comparison_is_constant_time(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/v1/models", headers={"x-api-key": WRONG_KEY}).status_code == 401
    assert seen == [(WRONG_KEY.encode(), MASTER_KEY.encode())]
    seen.clear()
    # A correct key: the same comparison decides, nothing short-circuits it.
    reply = client.get("/v1/models", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert reply.status_code != 401
    assert seen == [(MASTER_KEY.encode(), MASTER_KEY.encode())]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_method_no_route_takes_is_a_405_in_the_endpoints_format(
    client: TestClient, path: str
) -> None:
    # OPTIONS: neither app's routes take it, the legacy catch-all included.
    reply = client.request("OPTIONS", path, headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert reply.status_code == 405, reply.text
    assert "allow" in reply.headers
    body = reply.json()
    assert "detail" not in body
    if path.startswith("/v1/messages"):
        assert body == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "Method Not Allowed"},
        }
    else:
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"] == "Method Not Allowed"
