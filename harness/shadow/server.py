"""Assemble and run shadow mode: the primary app wrapped by the mirror, plus the store.

With ``shadow.mirror_process`` (the default) the store and the mirror's work live in the
mirror sidecar (:mod:`harness.shadow.sidecar`); otherwise both run in this process.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from harness.loopback import LoopbackServer, free_port
from harness.settings import HarnessSettings, replay_address, validate_upstream_mode
from harness.shadow.dispatch import Dispatch, LocalDispatch
from harness.shadow.forwarder import Forwarder
from harness.shadow.metrics import ShadowCollector
from harness.shadow.mirror import ShadowMirror
from harness.shadow.mirror_stack import derive_replay_config, start_mirror_stack
from harness.shadow.replay_upstream import TWIN_PREFIX
from harness.shadow.sidecar import SidecarDispatch, SidecarSpec, open_engine
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.shadow.upstream_tap import UpstreamTap
from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from memory_proxy.config import ProxyConfig
from memory_proxy.connection_limits import serve_with_limits
from memory_proxy.errors import ConfigError
from memory_proxy.metrics import MetricsRoute

__all__ = ["ShadowRun", "build_shadow", "replay_url", "serve_shadow"]

logger = logging.getLogger("harness.shadow")


@dataclass
class ShadowRun:
    """What a shadow-mode process holds: the app to serve, and what to close after it.

    ``app`` is what the server serves: ``mirror``, or ``mirror`` behind ``GET /metrics``.
    """

    app: ASGIApp
    mirror: ShadowMirror
    store: CaptureStore | None = None  # in this process; else the sidecar holds it
    sidecar: SidecarDispatch | None = None
    internal: list[LoopbackServer] = field(default_factory=list)
    settings: HarnessSettings | None = None  # as run: the replay port chosen

    def close(self) -> None:
        """After the server stopped: every captured pair is in the store when this returns."""
        for server in self.internal:
            server.stop()
        if self.sidecar is not None:
            code = self.sidecar.wait()
            if code:
                logger.error("mirror sidecar exited with %s", code)
        if self.store is not None:
            self.store.close()
            logger.info("store closed: %s", self.store.health())


def build_shadow(config: ProxyConfig, settings: HarnessSettings) -> ShadowRun:
    """The primary serves clients; the other proxy is the shadow.

    ``primary: sdk``: the SDK proxy app runs in this process and the mirror sends each
    request to ``mirror_to`` (the legacy proxy). ``primary: legacy``: clients are
    forwarded to ``mirror_to`` and the SDK proxy, started in this process on a private
    loopback port, is the shadow. In both, A/A noise probes go to the legacy proxy.
    """
    from memory_proxy.app import create_app

    settings = _fix_replay_port(settings)
    shadow = settings.shadow
    validate_upstream_mode(shadow, "shadow settings")
    replay = shadow.upstream == "replay"
    internal: list[LoopbackServer] = []
    # ``mirror_to`` is the legacy proxy whichever side answers clients.
    legacy = MirrorTarget("legacy", shadow.mirror_to)
    primary: Any
    if shadow.primary == "sdk":
        # Replay answers the mirror with the provider calls the SDK proxy made: tap them.
        tap = UpstreamTap(settings.capture.max_body_bytes) if replay else None
        primary = create_app(config, upstream_observer=tap)
        # The SDK build timed beside the mirror (replay only: it is answered by replay).
        twin = MirrorTarget("sdk", shadow.twin_to) if replay and shadow.twin_to else None
        targets = MirrorTargets(primary="sdk", shadow=legacy, repeat=legacy, twin=twin)
    else:
        sdk = LoopbackServer(create_app(config)).start()
        internal.append(sdk)
        primary = Forwarder(legacy.url, timeout=config.litellm.request_timeout)
        targets = MirrorTargets(
            primary="legacy", shadow=MirrorTarget("sdk", sdk.url), repeat=legacy
        )
    spec = SidecarSpec(
        settings=settings,
        secrets=config.secrets,
        user_id_mappings=config.user_id_mappings,
        targets=targets,
        nice=shadow.mirror_nice,
        idle=shadow.mirror_idle,
    )
    dispatch: Dispatch
    store = sidecar = None
    if shadow.mirror_process:
        dispatch = sidecar = SidecarDispatch(spec)
    else:
        engine, store = open_engine(spec)
        dispatch = LocalDispatch(engine)
    mirror = ShadowMirror(primary, settings=settings, dispatch=dispatch, tap_upstream=replay)
    app = _with_metrics(mirror, primary, config)
    return ShadowRun(
        app=app, mirror=mirror, store=store, sidecar=sidecar, internal=internal, settings=settings
    )


def _with_metrics(mirror: ShadowMirror, primary: Any, config: ProxyConfig) -> ASGIApp:
    """The mirror's metrics on the serving process's one ``GET /metrics``.

    An SDK primary already serves ``/metrics`` (its own request metrics): the mirror's
    join its registry. A forwarded legacy primary gets a ``/metrics`` of the mirror's
    alone; the legacy proxy serves its own request metrics.
    """
    if not config.options.metrics:
        return mirror
    collector = ShadowCollector(mirror.stats)
    proxy_metrics = getattr(getattr(primary, "state", None), "metrics", None)
    if proxy_metrics is not None:
        proxy_metrics.register(collector)
        return mirror
    registry = CollectorRegistry()
    registry.register(collector)
    return MetricsRoute(mirror, registry=registry, master_key=config.general.master_key)


def _fix_replay_port(settings: HarnessSettings) -> HarnessSettings:
    """Replay mode on "any port": choose it now, so the mirror side can be pointed at it
    before the replay upstream (in the sidecar) starts."""
    shadow = settings.shadow
    if shadow.upstream != "replay":
        return settings
    host, port = replay_address(shadow.replay_listen)
    if port:
        return settings
    return settings.with_overrides("shadow", replay_listen=f"{host}:{free_port()}")


def replay_url(settings: HarnessSettings) -> str | None:
    """Where the mirror side's providers must point in replay mode (None in live mode)."""
    if settings.shadow.upstream != "replay":
        return None
    host, port = replay_address(settings.shadow.replay_listen)
    return f"http://{host}:{port}"


def serve_shadow(config: ProxyConfig, settings: HarnessSettings, *, host: str, port: int) -> int:
    with contextlib.ExitStack() as cleanup:
        if not settings.shadow.mirror_to:
            settings = _start_mirror(config, settings, cleanup)
        settings = _start_twin(config, settings, cleanup)
        return _serve(config, settings, host, port)


def _start_mirror(
    config: ProxyConfig, settings: HarnessSettings, cleanup: contextlib.ExitStack
) -> HarnessSettings:
    """No ``mirror_to``: start the legacy stack pointed at the replay upstream (replay
    mode only: in live mode the user's own legacy stack is the mirror)."""
    if settings.shadow.upstream != "replay" or settings.shadow.primary != "sdk":
        raise ConfigError(
            "shadow.mirror_to: give the other proxy's URL (--mirror-to); only replay mode "
            "with the SDK proxy as primary starts the legacy stack itself"
        )
    settings = _fix_replay_port(settings)
    url = replay_url(settings)
    assert url is not None
    stack = cleanup.enter_context(Stack(_run_dir(settings, "mirror")))
    logger.warning("starting the mirror's legacy stack (logs in %s)", stack.run_dir)
    mirror = start_mirror_stack(stack, config.path, url)
    logger.warning("mirror: legacy proxy %s, its providers answered by replay at %s", mirror, url)
    return settings.with_overrides("shadow", mirror_to=mirror)


def _start_twin(
    config: ProxyConfig, settings: HarnessSettings, cleanup: contextlib.ExitStack
) -> HarnessSettings:
    """Replay mode, SDK primary: start the latency twin, the SDK proxy from the same
    config through a derived copy whose provider base URLs point at the replay upstream's
    twin book (:mod:`harness.shadow.engine` says why both proxies are timed this way)."""
    shadow = settings.shadow
    if (
        shadow.upstream != "replay"
        or shadow.primary != "sdk"
        or not shadow.latency_twin
        or shadow.twin_to
    ):
        return settings
    settings = _fix_replay_port(settings)
    url = replay_url(settings)
    assert url is not None
    stack = cleanup.enter_context(Stack(_run_dir(settings, "twin")))
    derived = derive_replay_config(config.path, url + TWIN_PREFIX, stack.run_dir / "twin.yaml")
    twin = stack.sdk_proxy(derived)
    logger.warning("latency twin: SDK proxy %s, its providers answered by replay", twin.url)
    return settings.with_overrides("shadow", twin_to=twin.url)


def _run_dir(settings: HarnessSettings, part: str) -> Path:
    """Where a part shadow mode starts keeps its logs: beside the store (reports/)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.capture.store).parent / f"shadow-{part}-{stamp}"


def _serve(config: ProxyConfig, settings: HarnessSettings, host: str, port: int) -> int:
    run = build_shadow(config, settings)
    assert run.settings is not None
    settings = run.settings
    logger.info(
        "shadow mode: primary=%s on %s:%d, mirroring to %s, upstream %s, store %s",
        settings.shadow.primary,
        host,
        port,
        settings.shadow.mirror_to,
        settings.shadow.upstream,
        settings.capture.store,
    )
    url = replay_url(settings)
    if url is not None:
        # The mirror proxy's provider base URLs must point here (keep their paths).
        logger.warning("replay upstream: %s (point the mirror side's api_base here)", url)
    else:
        logger.warning(
            "shadow.upstream: live: the mirror side calls the provider too (memory is "
            "written and spend counted twice)"
        )
    # uvicorn re-raises the SIGTERM it shut down for once it returns: the handler it puts
    # back (harness.cli's) unwinds, so the finally below lets the sidecar finish writing.
    try:
        # The same connection limits as `memory-proxy serve`: slow clients get a 408.
        serve_with_limits(run.app, config.options, host=host, port=port, log_level="warning")
    finally:
        run.close()
    return 0
