"""Malformed and hostile bodies against the running SDK proxy: never a 500, always an error
body in the endpoint's format (or a 2xx), and the proxy still serves afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.loopback import LoopbackServer
from tests.conftest import MASTER_KEY

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
ENDPOINTS = (CHAT, MESSAGES)
MODELS = ("gpt-4o", "claude-sonnet-4.5", "claude-haiku-x", "no-such-model", "")
HEADERS = {
    "authorization": f"Bearer {MASTER_KEY}",
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
}


@pytest.fixture(scope="module")
def http(sdk_proxy: LoopbackServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sdk_proxy.url, headers=HEADERS, timeout=30.0, trust_env=False
    ) as client:
        yield client


def _post(http: httpx.Client, path: str, content: bytes) -> httpx.Response:
    return http.post(path, content=content)


def _assert_well_formed(path: str, reply: httpx.Response) -> None:
    assert reply.status_code != 500, (path, reply.text[:500])
    assert reply.status_code < 500 or reply.status_code in (502, 503, 504), reply.text[:500]
    if reply.is_success:
        return
    body = reply.json()
    assert isinstance(body, dict), reply.text[:500]
    if path.startswith(MESSAGES):
        assert body.get("type") == "error", body
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)
    else:
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["message"], str) and "type" in body["error"]


def _assert_still_serving(http: httpx.Client) -> None:
    chat = http.post(
        CHAT, json={"model": "gpt-4o", "messages": [{"role": "user", "content": "still there?"}]}
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"]
    message = http.post(
        MESSAGES,
        json={
            "model": "claude-sonnet-4.5",
            "max_tokens": 32,
            "messages": [{"role": "user", "content": "still there?"}],
        },
    )
    assert message.status_code == 200, message.text
    assert message.json()["type"] == "message"


# -- hypothesis: wrong types and missing fields -------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
_json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_messages = st.one_of(
    _json_values,
    st.lists(
        st.one_of(
            _json_values,
            st.fixed_dictionaries(
                {"role": st.one_of(st.sampled_from(["user", "assistant", "system"]), _scalars)},
                optional={"content": _json_values},
            ),
        ),
        max_size=3,
    ),
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from(MODELS), _json_values),
        "messages": _messages,
        "max_tokens": st.one_of(st.integers(min_value=-5, max_value=10**12), _json_values),
        "stream": st.one_of(st.booleans(), _json_values),
        "temperature": _json_values,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies, path=st.sampled_from(ENDPOINTS))
def test_generated_bodies_never_get_a_500(
    http: httpx.Client, body: dict[str, Any], path: str
) -> None:
    reply = _post(http, path, json.dumps(body).encode())
    _assert_well_formed(path, reply)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.binary(max_size=200), path=st.sampled_from(ENDPOINTS))
def test_arbitrary_bytes_never_get_a_500(http: httpx.Client, raw: bytes, path: str) -> None:
    _assert_well_formed(path, _post(http, path, raw))


# -- hand-written hostile bodies -----------------------------------------------------------


def _nested(depth: int, leaf: str = '"x"') -> str:
    return "[" * depth + leaf + "]" * depth


def _valid(path: str, messages: str) -> str:
    if path == MESSAGES:
        return f'{{"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": {messages}}}'
    return f'{{"model": "gpt-4o", "messages": {messages}}}'


HOSTILE: dict[str, Any] = {
    "nested_10000_lists": lambda p: _valid(p, _nested(10_000)).encode(),
    "nested_10000_objects": lambda p: ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(),
    "nested_900_in_content": lambda p: _valid(
        p, '[{"role": "user", "content": ' + _nested(900) + "}]"
    ).encode(),
    "nested_200_in_content": lambda p: _valid(
        p, '[{"role": "user", "content": ' + _nested(200) + "}]"
    ).encode(),
    "huge_string_1mb": lambda p: _valid(
        p, json.dumps([{"role": "user", "content": "a" * 1_000_000}])
    ).encode(),
    "huge_model_name": lambda p: json.dumps(
        {"model": "m" * 60_000, "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    ).encode(),
    "invalid_utf8": lambda p: (
        _valid(p, '[{"role": "user", "content": "').encode() + b"\xff\xfe\xc3\x28" + b'"}]}'
    ),
    "lone_surrogate_escape": lambda p: _valid(
        p, '[{"role": "user", "content": "\\ud800 lone"}]'
    ).encode(),
    "lone_surrogate_translated": lambda p: json.dumps(
        {
            "model": "gpt-4o" if p == MESSAGES else "claude-sonnet-4.5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "\ud800 lone"}],
        }
    ).encode(),
    "surrogate_pair_escape": lambda p: _valid(
        p, '[{"role": "user", "content": "an escaped emoji \\ud83d\\ude00"}]'
    ).encode(),
    "nan_max_tokens": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('"max_tokens": 16', '"max_tokens": NaN')
        .replace('"messages"', '"temperature": NaN, "messages"')
        .encode()
    ),
    "infinity_temperature": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('"messages"', '"temperature": Infinity, "top_p": -Infinity, "messages"')
        .encode()
    ),
    "duplicate_keys": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('"messages"', '"model": "no-such-model", "messages"')
        .encode()
    ),
    "duplicate_forbidden_key": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('{"model"', '{"api_base": "http://127.0.0.1:1", "api_base": null, "model"')
        .encode()
    ),
    "huge_integer": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('"max_tokens": 16', '"max_tokens": ' + "9" * 4000)
        .replace('"messages"', '"seed": ' + "9" * 4000 + ', "messages"')
        .encode()
    ),
    "integer_over_int_max_str_digits": lambda p: (
        _valid(p, '[{"role": "user", "content": "x"}]')
        .replace('"messages"', '"seed": ' + "9" * 5000 + ', "messages"')
        .encode()
    ),
    "not_an_object": lambda p: b'["model", "messages"]',
    "empty": lambda p: b"",
    "whitespace": lambda p: b" \r\n\t ",
    "null_byte": lambda p: _valid(p, '[{"role": "user", "content": "a\\u0000b"}]').encode(),
    "bom_prefixed": lambda p: (
        b"\xef\xbb\xbf" + _valid(p, '[{"role": "user", "content": "x"}]').encode()
    ),
    "trailing_garbage": lambda p: _valid(p, '[{"role": "user", "content": "x"}]').encode() + b" }{",
}


# Not JSON (RFC 8259), or not a request: refused before anything goes upstream.
REFUSED = (
    "nested_10000",
    "invalid_utf8",
    "lone_surrogate",
    "nan_",
    "infinity_",
    "integer_over",
    "not_an",
    "empty",
    "whitespace",
    "trailing_garbage",
    "bom_prefixed",
    "duplicate_forbidden_key",
)
ACCEPTED = ("surrogate_pair_escape", "null_byte")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bodies_get_a_clean_reply(http: httpx.Client, path: str, case: str) -> None:
    reply = _post(http, path, HOSTILE[case](path))
    _assert_well_formed(path, reply)
    if case.startswith(REFUSED):
        assert reply.status_code == 400, (case, reply.status_code, reply.text[:300])
    if case.startswith(ACCEPTED):
        assert reply.status_code == 200, (case, reply.status_code, reply.text[:300])


def test_the_proxy_still_serves_after_the_fuzzing(http: httpx.Client) -> None:
    for path in ENDPOINTS:
        for case in ("nested_10000_lists", "invalid_utf8", "huge_string_1mb"):
            _post(http, path, HOSTILE[case](path))
    _assert_still_serving(http)
