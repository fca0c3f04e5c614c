"""Schemathesis against the SDK proxy's own OpenAPI schema, on a real loopback server.

Requests are generated from the schema both ways: bodies that fit it (they reach the
sandbox provider or are refused for an unknown model) and bodies that break it (wrong
types, missing fields, bad enums). Every answer must be a documented status with a body
in the endpoint's own error format or content type, never a 5xx of the proxy's own, and
the proxy keeps serving afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from harness.loopback import LoopbackServer
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}
REPO = Path(__file__).resolve().parents[2]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema() -> Any:
    """The schema the proxy serves at /openapi.json, built from the app itself: pytest's
    lazy fixture loading in schemathesis 4.32 does not work with pytest 9."""
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    app = create_app(load_config(REPO / "config" / "sandbox.yaml"))
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return loaded.include(path_regex="^/v1/")


schema = _schema()


def test_the_served_schema_is_the_one_tested(sdk_proxy: LoopbackServer) -> None:
    served = httpx.get(sdk_proxy.url + "/openapi.json").json()
    assert served["paths"].keys() >= {"/v1/chat/completions", "/v1/messages"}
    body = served["paths"]["/v1/messages"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["required"] == [
        "model",
        "max_tokens",
        "messages",
    ]


@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@pytest.mark.slow
def test_generated_requests_get_documented_answers(case: Any, sdk_proxy: LoopbackServer) -> None:
    response = case.call(base_url=sdk_proxy.url, headers=AUTH, timeout=30)
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_requests_without_the_key_are_refused_in_format(
    case: Any, sdk_proxy: LoopbackServer
) -> None:
    response = case.call(base_url=sdk_proxy.url, timeout=30)
    if case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, response.text
        case.validate_response(response, checks=CHECKS)
        return
    # A method the path does not take: 405 with Allow, also in the endpoint's format.
    assert response.status_code == 405, response.text
    assert case.operation.method.upper() in response.headers.get("allow", [])
    error = response.json()
    if case.operation.path.startswith("/v1/messages"):
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    else:
        assert error["error"]["type"] == "invalid_request_error"


def test_the_proxy_still_serves_after_the_fuzzing(sdk_proxy: LoopbackServer, sandbox: Any) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "still there?"}]}
    reply = httpx.post(sdk_proxy.url + "/v1/chat/completions", json=body, headers=AUTH)
    assert reply.status_code == 200 and reply.json()["object"] == "chat.completion"
