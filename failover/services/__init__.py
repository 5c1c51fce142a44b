"""The use cases, one small typed service per concern, composed by :class:`failover.runtime.Runtime`.

Each service is built from only what it needs (the database, the settings,
the configuration in force, the relay, the guard) and exposes real
signatures. A use case runs one engine function in one transaction, then
hands the batches it queued to :class:`~failover.services.relay.Relay`.

- ``config``: the files in force (runbooks, contacts, templates, detection.yaml), ``ConfigReport``.
- ``relay``: publishing committed batches to the broker.
- ``activations``: previews, activations, approvals, updates, stand-down.
- ``delivery``: channels, guard, sending a batch, the sweep, the follow-up.
- ``detection``: Graph polls, probes, the signals webhook, evaluation, confirm by hand.
- ``tracking``: receipts, replies, keypresses, acknowledgements, escalation steering.
- ``audit``: refused callbacks, checkpoints and the audit key.
- ``accounts``: what the console's accounts need (the TOTP secret box).
"""
