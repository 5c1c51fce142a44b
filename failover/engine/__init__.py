"""Use cases over the database: activation, dispatch, relay, incidents, audit, read models."""
