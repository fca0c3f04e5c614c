"""The harness's exception tree: what a command can fail with that the user can fix.

::

    HarnessError                      a message for the user; ``harness`` exits 2
    ├── CorpusError                   a corpus file that does not parse    (corpus)
    ├── MalformedPair                 a capture that does not read back    (store)
    ├── SchemaTooNew                  a store written by a newer harness   (store)
    ├── StoreUnavailable              a PostgreSQL store that cannot be used (store)
    ├── ConfigEditError               a config the cutover cannot edit     (cutover)
    ├── RemoteTargetRefused           a load target off loopback           (load)
    ├── LoadGeneratorError            the bench's load generator failed    (bench)
    ├── ScopeError                    a --run/--since that is bad or empty (runs)
    └── ResetRefused                  `harness reset` while a run is open  (runs)

Each subclass also keeps the builtin base it had (``ValueError``, ``RuntimeError``), so
code that catches those still does. ``harness.cli.main`` catches :class:`HarnessError`
once, prints its message and exits 2: a user never sees a traceback for a bad input.
"""

from __future__ import annotations

__all__ = ["HarnessError"]


class HarnessError(Exception):
    """A failure the user can act on; its message says what and where, never a secret."""
