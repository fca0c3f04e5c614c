"""Runs: what a `harness shadow` start records about itself, and the mirror's coverage.

:mod:`harness.runs.identity` names what produced a run (versions, config hashes);
:mod:`harness.runs.coverage` turns a run's counters into "N of M requests mirrored";
``harness runs`` and ``harness reset`` are in :mod:`harness.runs.cli`. The rows
themselves are the store's (:mod:`harness.store.runs`).
"""
