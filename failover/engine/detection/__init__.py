"""Outage detection on the database.

- ``decisions``: readings in (Graph, probes, signals, an operator), votes and signals stored, the
  detector's step applied in one transaction: incidents opened, runbooks activated, all-clears queued.
- ``view``: the watcher's read model for the dashboard and the CLI.
"""
