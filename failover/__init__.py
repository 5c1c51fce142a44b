"""failover: contingency communication when Microsoft 365 is down."""

__version__ = "0.1.0"
