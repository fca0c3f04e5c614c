"""The gradual cutover: move users to the SDK proxy a slice at a time, judged live.

``plan`` reads the step list and durations (pure); ``judge`` decides a window of pairs
with the report's own gates (pure); ``controller`` walks the steps, writes each decision
to the store and rolls back to 0 % at the first failing window; the front door that
serves the slices is :mod:`harness.shadow.canary_route`.
"""
