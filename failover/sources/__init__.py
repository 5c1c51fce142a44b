"""Outage signal sources: Microsoft Graph service health and independent probes."""
