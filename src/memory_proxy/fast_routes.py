"""The generation endpoints served straight from ASGI, ahead of FastAPI's request layers.

Past its middleware, FastAPI runs each request through exception middleware, an exit
stack, the router's regex matching, dependency solving and response wrappers: about a
fifth of a pass-through request's CPU once litellm is out of the way. The generation
endpoints use none of it (they take a ``Request``, return a ``Response`` and raise
``ProxyError``), so :class:`FastRoutes`, a middleware, matches them by method and exact
path, renders their errors with the app's one error renderer, and passes every other
request (health, models, docs, a wrong method) on to FastAPI. The routes stay declared on
the FastAPI app as well, for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Endpoint", "ErrorRenderer", "FastRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorRenderer = Callable[[Request, Exception], Response]


class FastRoutes:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[tuple[str, str], Endpoint],
        render_error: ErrorRenderer,
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:  # noqa: BLE001 - rendered in the endpoint's API format
            response = self.render_error(request, exc)
        await response(scope, receive, send)
