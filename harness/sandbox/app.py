"""``create_app``: the Starlette app serving the control endpoints and the provider APIs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from harness.sandbox.control import control_routes
from harness.sandbox.endpoints import api_endpoint
from harness.sandbox.settings import SandboxSettings
from harness.sandbox.state import SandboxState

__all__ = ["create_app"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: SandboxSettings | None = None) -> Starlette:
    """A sandbox provider app; its state lives on ``app.state.sandbox``."""
    settings = settings or SandboxSettings()
    # Control routes first: the API route below matches every path by suffix.
    routes = [*control_routes(), Route("/{path:path}", api_endpoint, methods=_METHODS)]
    app = Starlette(routes=routes)
    app.state.sandbox = SandboxState(settings)
    return app
