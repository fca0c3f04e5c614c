"""Assemble and run shadow mode: the primary app wrapped by the mirror, plus the store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import uvicorn

from harness.loopback import LoopbackServer
from harness.redaction import PromptPolicy, Redactor
from harness.settings import HarnessSettings
from harness.shadow.forwarder import Forwarder
from harness.shadow.mirror import ShadowMirror
from harness.store import CaptureStore
from memory_proxy.config import ProxyConfig
from memory_proxy.memory_router import MemoryRouter

__all__ = ["ShadowRun", "build_shadow", "serve_shadow"]

logger = logging.getLogger("harness.shadow")


@dataclass
class ShadowRun:
    """What a shadow-mode process holds: the app to serve, and what to close after it."""

    app: ShadowMirror
    store: CaptureStore
    internal: list[LoopbackServer] = field(default_factory=list)

    def close(self) -> None:
        for server in self.internal:
            server.stop()
        self.store.close()


def build_shadow(config: ProxyConfig, settings: HarnessSettings) -> ShadowRun:
    """The primary serves clients; the other proxy is the shadow.

    ``primary: sdk``: the SDK proxy app runs in this process and the mirror sends each
    request to ``mirror_to`` (the legacy proxy). ``primary: legacy``: clients are
    forwarded to ``mirror_to`` and the SDK proxy, started in this process on a private
    loopback port, is the shadow. In both, A/A noise probes go to the legacy proxy.
    """
    from memory_proxy.app import create_app

    shadow = settings.shadow
    store = CaptureStore(
        settings.capture.store,
        redactor=Redactor(
            config.secrets, store_prompts=cast(PromptPolicy, settings.capture.store_prompts)
        ),
    )
    router = MemoryRouter(config.user_id_mappings)
    internal: list[LoopbackServer] = []
    primary: Any
    if shadow.primary == "sdk":
        primary = create_app(config)
        shadow_url = shadow.mirror_to
        names = ("sdk", "legacy")
    else:
        sdk = LoopbackServer(create_app(config)).start()
        internal.append(sdk)
        primary = Forwarder(shadow.mirror_to, timeout=config.litellm.request_timeout)
        shadow_url = sdk.url
        names = ("legacy", "sdk")
    app = ShadowMirror(
        primary,
        settings=settings,
        sink=store,
        shadow_url=shadow_url,
        repeat_url=shadow.mirror_to,
        primary_name=names[0],
        shadow_name=names[1],
        router=router,
    )
    return ShadowRun(app=app, store=store, internal=internal)


def serve_shadow(config: ProxyConfig, settings: HarnessSettings, *, host: str, port: int) -> int:
    run = build_shadow(config, settings)
    logger.info(
        "shadow mode: primary=%s on %s:%d, mirroring to %s, store %s",
        settings.shadow.primary,
        host,
        port,
        settings.shadow.mirror_to,
        settings.capture.store,
    )
    try:
        uvicorn.run(
            run.app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(config.options.shutdown_grace_seconds),
        )
    finally:
        run.close()
        health = run.store.health()
        logger.info("store closed: %s", health)
    return 0
