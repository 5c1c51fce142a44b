"""Outage detection, the pure part.

- ``config``: detection.yaml (what is watched, the confirmation policy, probes), loaded with file:line problems.
- ``signals``: what the sources read (Graph snapshots and failures, issues, votes, readings), as value objects.
- ``policy``: the detector, one ``step`` from readings and states to transitions, incidents to open and resolve.

The database side is :mod:`failover.engine.detection.decisions`, the use cases :mod:`failover.services.detection`,
the inbound webhook's parsing :mod:`failover.sources.signals`, the web part :mod:`failover.web.detection`.
"""
