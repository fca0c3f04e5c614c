"""The sandbox provider: an offline, faithful stand-in for Anthropic, OpenAI and
Supermemory's memory router.

Endpoints (matched by path suffix under any prefix, so the router's
``/v3/api.anthropic.com/v1/messages`` and ``/v1/messages?beta=true`` both work):

* ``POST .../v1/messages`` — Anthropic Messages, JSON or SSE (``stream: true``).
* ``POST .../v1/messages/count_tokens`` — ``{"input_tokens": N}``.
* ``POST .../chat/completions`` — OpenAI Chat Completions, JSON or SSE.
* ``GET .../models`` — OpenAI model list (entries also carry Anthropic's fields).
* ``/_sandbox/...`` — control endpoints, see ``harness.sandbox.control``.

Replies are a pure function of the request body (sha256 of model, messages, system and
tools seeds the words, ids and ``created``); ``SandboxSettings.nondeterministic`` varies
them per request from a seeded RNG instead. A reply echoes the first words of the last
user message (or the tool result it answers). When tools are offered and the
conversation does not end in a tool result, the reply is a call of the first tool that
``tool_choice`` forces or the last user text names (whole word, case-sensitive), with
arguments generated from the tool's schema.

Every API response without a valid ``__cf_bm`` cookie in the request sets one
(``Set-Cookie: __cf_bm=...; path=/; HttpOnly``). With ``require_cookie``, once one has
been issued, requests without a valid cookie get Cloudflare's 503 ``error code: 1200``.

Fault directives, written anywhere in the last user message, aim a fault at one request
through any proxy (several may be combined, ``[sandbox:a=1,b=2]`` or separate brackets)::

    [sandbox:status=429]          answer with that status (400-599) in the API's error
                                  format; 429 carries Retry-After: 1, 503 is overloaded
    [sandbox:cloudflare=1200]     Cloudflare's 503 text/plain "error code: 1200"
    [sandbox:malformed]           200 with the JSON body cut in half (a stream: its
                                  first content delta's JSON cut in half)
    [sandbox:cut_after=N]         send N stream events, then drop the connection
    [sandbox:delay_ms=N]          wait N ms before the response headers (replaces the
                                  configured latency)
    [sandbox:stream_delay_ms=N]   wait N ms between stream events
    [sandbox:ttft_ms=N]           wait N ms before the first content delta
    [sandbox:stream_error=N]      send N stream events, then the format's mid-stream
                                  error event (Anthropic ``event: error`` with
                                  ``overloaded_error``; OpenAI ``data: {"error": ...}``)
                                  and end the stream cleanly
    [sandbox:stall_after=N]       send N stream events, then go silent with the
                                  connection open until the client gives up
    [sandbox:silence_ms=N]        after the stream's first event (or the first K with
                                  ``silence_after=K``), N ms of silence, then the rest
                                  (a model thinking before it goes on)

Configured faults (``FaultSettings``: latency, jitter, TTFT, chunk delay, and the 429 /
503 / 500 / malformed / stream-cut rates drawn from a seeded RNG) apply to
``/messages`` and ``/chat/completions``; directives also to ``count_tokens``.

Every API request is captured (secrets masked) for ``GET /_sandbox/requests``.
"""

from __future__ import annotations

from harness.sandbox.app import create_app
from harness.sandbox.cli import add_arguments, settings_from_args
from harness.sandbox.settings import FaultSettings, SandboxSettings

__all__ = [
    "FaultSettings",
    "SandboxSettings",
    "add_arguments",
    "create_app",
    "settings_from_args",
]
