"""Locust load tests for the memory proxies: run through ``harness load``, or ``locust -f``.

Never imported by pytest or by the proxies: ``import locust`` monkey-patches the standard
library with gevent. ``loadtests/`` stays outside pytest's ``testpaths``.
"""
