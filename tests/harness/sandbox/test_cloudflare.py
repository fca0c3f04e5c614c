from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from harness.sandbox import SandboxSettings
from harness.sandbox.cloudflare import CookieIssuer, parse_cookie_header
from tests.harness.sandbox.bodies import API_KEY, anthropic_body, openai_body


def _cookie(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    assert header.endswith("; path=/; HttpOnly")
    name, _, rest = header.partition("=")
    assert name == "__cf_bm"
    return rest.partition(";")[0]


def test_issuer_signs_and_checks_tokens() -> None:
    issuer = CookieIssuer(seed=3)
    token = issuer.issue()
    assert issuer.is_valid(token)
    assert not issuer.is_valid(None) and not issuer.is_valid("") and not issuer.is_valid("garbage")
    assert not issuer.is_valid(token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not CookieIssuer(seed=4).is_valid(token)
    issuer.reset()
    assert not issuer.is_valid(token)


def test_parse_cookie_header() -> None:
    assert parse_cookie_header('a=1; __cf_bm="x.y"; broken') == {"a": "1", "__cf_bm": "x.y"}
    assert parse_cookie_header(None) == {}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/messages", anthropic_body()),
        ("POST", "/v1/chat/completions", openai_body()),
        ("GET", "/v1/models", None),
        ("POST", "/v1/messages", {"bad": True}),
    ],
)
async def test_every_api_reply_sets_a_cookie_when_none_was_sent(
    client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body)
    assert _cookie(response)


async def test_a_valid_cookie_is_not_replaced_and_a_bad_one_is(client: httpx.AsyncClient) -> None:
    token = _cookie(await client.post("/v1/messages", json=anthropic_body()))
    again = await client.post(
        "/v1/messages", json=anthropic_body(), headers={"cookie": f"__cf_bm={token}"}
    )
    assert "set-cookie" not in again.headers
    forged = await client.post(
        "/v1/messages", json=anthropic_body(), headers={"cookie": "__cf_bm=forged"}
    )
    assert _cookie(forged) != token


async def test_control_endpoints_set_no_cookie(client: httpx.AsyncClient) -> None:
    assert "set-cookie" not in (await client.get("/_sandbox/health")).headers


@pytest.mark.parametrize("settings", [SandboxSettings(require_cookie=True)])
async def test_require_cookie_refuses_clients_that_drop_it(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/messages", json=anthropic_body())
    assert first.status_code == 200  # nothing issued yet: nothing to insist on
    token = _cookie(first)
    refused = await client.post("/v1/messages", json=anthropic_body())
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.headers["server"] == "cloudflare"
    assert "error code: 1200" in refused.text
    captured = (await client.get("/_sandbox/requests")).json()["requests"][-1]
    assert captured["faults"] == ["cloudflare=1200 (no valid __cf_bm cookie)"]
    assert captured["status"] == 503
    kept = await client.post(
        "/v1/messages", json=anthropic_body(), headers={"cookie": f"__cf_bm={token}"}
    )
    assert kept.status_code == 200


@pytest.mark.parametrize("settings", [SandboxSettings(require_cookie=True)])
async def test_a_client_with_a_cookie_jar_always_passes(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers={"x-api-key": API_KEY}
    ) as client:
        statuses = [
            (await client.post("/v1/messages", json=anthropic_body())).status_code for _ in range(4)
        ]
    assert statuses == [200] * 4


@pytest.mark.parametrize("settings", [SandboxSettings(require_cookie=True)])
async def test_reset_invalidates_cookies_and_reopens_the_gate(client: httpx.AsyncClient) -> None:
    token = _cookie(await client.post("/v1/messages", json=anthropic_body()))
    await client.post("/_sandbox/reset")
    headers = {"cookie": f"__cf_bm={token}"}
    assert (
        await client.post("/v1/messages", json=anthropic_body(), headers=headers)
    ).status_code == 200
    assert (
        await client.post("/v1/messages", json=anthropic_body(), headers=headers)
    ).status_code == 503
