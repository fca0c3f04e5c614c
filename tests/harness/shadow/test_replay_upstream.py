"""The replay upstream answers with the primary's recorded calls, and forwards nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.shadow.replay_upstream import (
    MISS_STATUS,
    TWIN_PREFIX,
    ReplayRouter,
    ReplayUpstream,
    replay_key,
)
from harness.shadow.upstream_tap import CallRecord


def _body(text: str, stream: bool = False, **extra: object) -> bytes:
    return json.dumps(
        {"model": "m", "stream": stream, "messages": [{"role": "user", "content": text}], **extra}
    ).encode()


def _recorded(
    body: bytes,
    status: int,
    chunks: list[tuple[float, bytes]],
    *,
    headers: list[tuple[str, str]] | None = None,
    ttfb: float = 0.0,
) -> CallRecord:
    started = 100.0
    return (
        started,
        "POST",
        "https://provider.example/v1/messages",
        [("content-type", "application/json")],
        body,
        status,
        headers or [("content-type", "application/json")],
        started + ttfb,
        [(started + at, data) for at, data in chunks],
        started + (chunks[-1][0] if chunks else ttfb),
        None,
    )


@pytest.fixture
def replay() -> Iterator[tuple[ReplayUpstream, httpx.Client]]:
    upstream = ReplayUpstream()
    with LoopbackServer(upstream) as server, httpx.Client(base_url=server.url) as client:
        yield upstream, client


def test_the_key_ignores_model_and_memory_headers_but_not_the_turn_or_stream() -> None:
    assert replay_key(_body("hi")) == replay_key(_body("hi", model_id="other"))
    assert replay_key(_body("hi")) != replay_key(_body("hi", stream=True))
    assert replay_key(_body("hi")) != replay_key(_body("bye"))
    assert replay_key(b"not json") is None and replay_key(b"") is None


def test_a_registered_call_is_answered_as_recorded(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    upstream, client = replay
    body = _body("what is recorded")
    answer = b'{"id": "msg_1", "content": [{"type": "text", "text": "recorded"}]}'
    headers = [
        ("content-type", "application/json"),
        ("request-id", "req_42"),
        ("set-cookie", "__cf_bm=abc; path=/"),
        ("connection", "keep-alive"),
        ("content-length", "999"),
    ]
    registration = upstream.expect([_recorded(body, 200, [(0.01, answer)], headers=headers)])
    assert registration is not None

    # The mirror proxy sends the same turn with its own model id and memory headers.
    sent = _body("what is recorded", model_id="legacy-alias")
    reply = client.post(
        "/v3/api.anthropic.com/v1/messages", content=sent, headers={"x-sm-user-id": "u1"}
    )

    assert reply.status_code == 200 and reply.content == answer
    assert reply.headers["request-id"] == "req_42"
    assert reply.headers["set-cookie"].startswith("__cf_bm=")
    assert reply.headers["content-length"] == str(len(answer))  # re-framed, not recorded
    (received,) = registration.received
    assert received.path == "/v3/api.anthropic.com/v1/messages" and received.body == sent
    assert ("x-sm-user-id", "u1") in received.headers
    upstream.release(registration)
    assert (upstream.served, upstream.misses) == (1, 0)


def test_a_stream_keeps_the_primary_s_pacing(replay: tuple[ReplayUpstream, httpx.Client]) -> None:
    upstream, client = replay
    body = _body("stream me", stream=True)
    events = [b"event: a\ndata: {}\n\n", b"event: b\ndata: {}\n\n", b"event: c\ndata: {}\n\n"]
    sse = [("content-type", "text/event-stream")]
    chunks = [(0.30, events[0]), (0.30, events[1]), (0.60, events[2])]
    upstream.expect([_recorded(body, 200, chunks, headers=sse, ttfb=0.05)])

    arrivals: list[float] = []
    began = time.perf_counter()
    with client.stream("POST", "/v1/messages", content=body) as reply:
        for chunk in reply.iter_raw():
            arrivals.append(time.perf_counter() - began)
            received = chunk
    assert reply.status_code == 200
    # Never sooner than the primary got them: the first event after 0.3 s, the last
    # another 0.3 s later (a busy machine only adds).
    assert arrivals[0] >= 0.29 and arrivals[-1] >= 0.59
    assert received.endswith(events[2])


def test_retries_replay_the_primary_s_calls_in_order_then_the_last_again(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    upstream, client = replay
    body = _body("retried")
    limited = _recorded(body, 429, [(0.0, b'{"type":"error"}')], headers=[("retry-after", "1")])
    ok = _recorded(body, 200, [(0.0, b'{"ok": true}')])
    upstream.expect([limited, ok])
    statuses = [client.post("/v1/messages", content=body).status_code for _ in range(3)]
    assert statuses == [429, 200, 200]


def test_a_call_nobody_registered_is_a_counted_miss_and_goes_nowhere(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    upstream, client = replay
    registration = upstream.expect([_recorded(_body("known"), 200, [(0.0, b"{}")])])
    assert registration is not None
    reply = client.post("/v1/messages/count_tokens", content=_body("unknown"))
    assert reply.status_code == MISS_STATUS
    assert reply.json()["error"]["type"] == "replay_miss"
    assert upstream.misses == 1 and registration.received == []
    # A released registration answers no more.
    upstream.release(registration)
    assert client.post("/v1/messages", content=_body("known")).status_code == MISS_STATUS
    # Neither miss is dropped: both are kept, once, for the accounting gate.
    kept = upstream.take_unattached()
    assert [(c.path, c.status) for c in kept] == [
        ("/v1/messages/count_tokens", MISS_STATUS),
        ("/v1/messages", MISS_STATUS),
    ]
    assert upstream.take_unattached() == []


def test_a_duplicate_while_the_request_is_in_flight_goes_with_it(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    upstream, client = replay
    body = _body("twice")
    registration = upstream.expect([_recorded(body, 200, [(0.0, b"{}")])])
    assert registration is not None
    assert [client.post("/v1/messages", content=body).status_code for _ in range(2)] == [200, 200]
    assert len(registration.received) == 2 and upstream.take_unattached() == []


def test_nothing_to_replay_registers_nothing() -> None:
    upstream = ReplayUpstream()
    assert upstream.expect([]) is None
    assert upstream.expect([_recorded(b'{"model": "m"}', 200, [])]) is None


def test_the_harness_id_wins_over_the_content_key(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    # Two users send the same turn at once: by content alone their answers could swap.
    upstream, client = replay
    body = _body("same words")
    first = upstream.expect([_recorded(body, 200, [(0.0, b'{"user": 1}')])], "shd_1")
    second = upstream.expect([_recorded(body, 200, [(0.0, b'{"user": 2}')])], "shd_2")
    assert first is not None and second is not None
    reply = client.post("/v1/messages", content=body, headers={"x-shadow-request": "shd_2"})
    assert reply.json() == {"user": 2}
    assert second.received and not first.received
    upstream.release(second)
    # Released, the id no longer matches: the content key finds the other one.
    reply = client.post("/v1/messages", content=body, headers={"x-shadow-request": "shd_2"})
    assert reply.json() == {"user": 1}


def test_among_identical_turns_the_same_memory_user_goes_first(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    upstream, client = replay
    body = _body("same words again")

    def recorded(user: str, answer: bytes) -> CallRecord:
        call = _recorded(body, 200, [(0.0, answer)])
        return (*call[:3], [("x-sm-user-id", user)], *call[4:])  # type: ignore[return-value]

    upstream.expect([recorded("alice", b'{"for": "alice"}')])
    upstream.expect([recorded("bob", b'{"for": "bob"}')])
    reply = client.post("/v1/messages", content=body, headers={"x-sm-user-id": "bob"})
    assert reply.json() == {"for": "bob"}
    # Without the header (a proxy that dropped it) the call is still answered.
    assert client.post("/v1/messages", content=body).status_code == 200


def test_the_latency_twin_has_a_book_of_its_own() -> None:
    """The twin's calls (under /_twin) are answered from its registrations and never claim
    the mirror's: what the mirror side sent the provider stays the mirror's alone."""
    mirror, twin = ReplayUpstream(), ReplayUpstream()
    body = _body("timed twice")
    answer = b'{"id": "msg_1"}'
    recorded = [_recorded(body, 200, [(0.0, answer)])]
    mirror_registration = mirror.expect(recorded, "shd_1")
    twin_registration = twin.expect(recorded, "shd_1-twin")
    assert mirror_registration is not None and twin_registration is not None
    with (
        LoopbackServer(ReplayRouter(mirror, twin)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        from_twin = client.post(TWIN_PREFIX + "/v3/api.anthropic.com/v1/messages", content=body)
        from_mirror = client.post("/v3/api.anthropic.com/v1/messages", content=body)
    assert from_twin.content == from_mirror.content == answer
    (twin_call,) = twin_registration.received
    (mirror_call,) = mirror_registration.received
    assert twin_call.path == mirror_call.path == "/v3/api.anthropic.com/v1/messages"
    assert (mirror.served, twin.served, mirror.misses, twin.misses) == (1, 1, 0, 0)


def test_a_call_claimed_by_an_identical_request_in_flight_goes_back_to_its_own(
    replay: tuple[ReplayUpstream, httpx.Client],
) -> None:
    """Two identical requests in flight, and calls without the harness's id (the legacy
    proxy does not pass it on): the first call is claimed by the least-served, which may
    be the other one's. When a request is answered with no call on record, the call its
    twin holds comes back to it: one call each, not two and none."""
    upstream, client = replay
    body = _body("the same turn")
    recorded = _recorded(body, 200, [(0.0, b'{"id": "msg_1"}')])
    first = upstream.expect([recorded], request_id="first")
    second = upstream.expect([recorded], request_id="second")
    assert first is not None and second is not None
    # The second request's call arrives first, claimed by key: the tie goes to "first".
    assert client.post("/v1/messages", content=body).status_code == 200
    assert [len(first.received), len(second.received)] == [1, 0]
    upstream.release(second)  # the second request was answered: that call was its own
    assert [len(first.received), len(second.received)] == [0, 1]
    assert client.post("/v1/messages", content=body).status_code == 200
    upstream.release(first)
    assert [len(first.received), len(second.received)] == [1, 1]
    # A call claimed by the harness's id is its request's own: never taken back.
    third = upstream.expect([recorded], request_id="third")
    fourth = upstream.expect([recorded], request_id="fourth")
    assert third is not None and fourth is not None
    client.post("/v1/messages", content=body, headers={"x-shadow-request": "third"})
    upstream.release(fourth)
    assert [len(third.received), len(fourth.received)] == [1, 0]
