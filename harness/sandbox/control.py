"""The ``/_sandbox/`` control endpoints that tests and the harness drive.

``GET  /_sandbox/health``            ``{"status": "ok"}``
``GET  /_sandbox/requests``          ``?since=SEQ&limit=N`` → ``{"requests": [...], "next": SEQ}``
``DELETE /_sandbox/requests``        clear the captures (sequence numbers keep counting)
``POST /_sandbox/reset``             clear captures, invalidate cookies, restore faults/RNGs
``GET  /_sandbox/faults``            the current ``FaultSettings`` as JSON
``PUT  /_sandbox/faults``            replace them (omitted fields fall back to 0)
``PATCH /_sandbox/faults``           change only the given fields
``GET  /_sandbox/settings``          the settings the app was built with

Control requests are not captured, so polling never shows up in what it polls.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.sandbox.settings import FaultSettings
from harness.sandbox.state import SandboxState

__all__ = ["control_routes"]


def control_routes() -> list[Route]:
    return [
        Route("/_sandbox/health", _health, methods=["GET"]),
        Route("/_sandbox/requests", _list_requests, methods=["GET"]),
        Route("/_sandbox/requests", _clear_requests, methods=["DELETE"]),
        Route("/_sandbox/reset", _reset, methods=["POST"]),
        Route("/_sandbox/faults", _get_faults, methods=["GET"]),
        Route("/_sandbox/faults", _put_faults, methods=["PUT", "PATCH"]),
        Route("/_sandbox/settings", _get_settings, methods=["GET"]),
        Route("/_sandbox/{rest:path}", _unknown),
    ]


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _list_requests(request: Request) -> JSONResponse:
    try:
        since = int(request.query_params.get("since", "0"))
        limit_text = request.query_params.get("limit")
        limit = int(limit_text) if limit_text is not None else None
    except ValueError:
        return JSONResponse({"error": "since and limit must be integers"}, status_code=400)
    records = _state(request).captures.since(since, limit)
    next_seq = records[-1].seq if records else max(since, 0)
    return JSONResponse({"requests": [r.to_dict() for r in records], "next": next_seq})


async def _clear_requests(request: Request) -> JSONResponse:
    captures = _state(request).captures
    cleared = len(captures)
    captures.clear()
    return JSONResponse({"cleared": cleared, "next": captures.latest_seq})


async def _reset(request: Request) -> JSONResponse:
    _state(request).reset()
    return JSONResponse({"status": "reset"})


async def _get_faults(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).faults.faults.to_dict())


async def _put_faults(request: Request) -> JSONResponse:
    injector = _state(request).faults
    try:
        data: Any = json.loads(await request.body())
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object of fault settings")
        base = injector.faults if request.method == "PATCH" else FaultSettings()
        injector.faults = base.merged(data)
    except (ValueError, TypeError) as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse(injector.faults.to_dict())


async def _get_settings(request: Request) -> JSONResponse:
    return JSONResponse(dataclasses.asdict(_state(request).settings))


async def _unknown(request: Request) -> JSONResponse:
    return JSONResponse({"error": f"no control endpoint {request.url.path}"}, status_code=404)
