"""The composition root: settings, database and the typed services, wired once.

Web, CLI and worker each build one ``Runtime`` at start-up (never at import)
and call the use cases of its services: ``rt.activations.trigger(...)``,
``rt.delivery.send_batch(...)``, ``rt.detection.poll_graph()``. Each service
(failover/services/) is built from only what it needs; none of them knows
the runtime.
"""

from __future__ import annotations

import logging
import time

from failover import datafiles, pulse
from failover.db import Database, sqlite_path
from failover.engine import audit as audit_log
from failover.errors import ConfigError
from failover.receiptqueue import ReceiptQueue
from failover.services.accounts import Accounts
from failover.services.activations import Activations
from failover.services.audit import Audit
from failover.services.config import Configuration
from failover.services.delivery import Delivery
from failover.services.detection import Detection
from failover.services.drills import Drills
from failover.services.people import People
from failover.services.readiness import Readiness
from failover.services.relay import Relay
from failover.services.statuspage import StatusPage
from failover.services.talkback import Talkback
from failover.services.tracking import Tracking
from failover.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        datafiles.private_dir(settings.data_dir)  # embedded database, broker, beat schedule, keys: 0700
        if settings.embedded_broker:
            broker = sqlite_path(settings.celery_broker_url)
            if broker is not None:
                datafiles.private_sqlite(broker)
        self.audit_key = audit_log.AuditKey(settings.audit_key_bytes())
        self.database = Database(settings.sqlalchemy_url, audit_key=self.audit_key)
        self.config = Configuration(settings, self.database)
        # Whether there is work about: lets an idle installation sleep and wakes it on work (failover/pulse.py).
        self.pulse = pulse.for_installation(settings.data_dir, settings.shared_redis_url)
        self.relay = Relay(self.database, self.pulse)
        self.delivery = Delivery(settings, self.database, self.config, self.relay)
        self.activations = Activations(self.database, self.config, self.relay, self.delivery.transports)
        self.talkback = Talkback(
            settings,
            self.database,
            self.config,
            self.relay,
            self.delivery.transports,
            lambda: self.accounts.totp_box,
        )
        # Receipts wait in the shared Redis for a worker to apply them in groups; embedded: applied in the request.
        self.receipts_queue = ReceiptQueue(settings.shared_redis_url) if settings.shared_redis_url else None
        self.tracking = Tracking(
            settings, self.database, self.config, self.relay, self.talkback.hook, queue=self.receipts_queue
        )
        self.delivery.extra_sweeps.append(self.tracking.drain)  # leftovers: a drain that was never woken
        self.delivery.extra_sweeps.append(self.talkback.sweep_bridges)
        self.audit = Audit(settings, self.database, self.audit_key, lambda: self.delivery.channels)
        self.accounts = Accounts(settings)
        self.detection = Detection(
            settings, self.database, self.config, self.relay, self.audit, self.delivery.transports
        )
        self.readiness = Readiness(settings, self.database, self.config, self.delivery)  # doctor, canaries
        self.drills = Drills(settings, self.database, self.config, self.relay)
        self.people = People(
            self.database,
            settings.config_dir,
            graph=self.detection.graph,
            sleep=time.sleep,
            publish=self.relay.publish,
            directory=lambda: self.config.catalog().contacts,
            public_url=settings.public_url,
        )
        self.config.adopt = self.people.adopt  # contacts.yaml into the people table, which planning reads
        self.config.known = self.people.holds_yaml  # a worker does not parse the people the table holds
        self.status = StatusPage(
            settings, self.database, watched=lambda: self.config.detection().watch, relay=self.relay.publish
        )
        self.delivery.extensions.append(self.status.install)  # webhook subscribers, List-Unsubscribe

    def warm(self) -> None:
        """Load and import what the first activation would need, before an outage needs it."""
        try:
            self.config.catalog()  # follow-ups and fallbacks read it; 50,000 contacts take seconds to parse
        except ConfigError as exc:
            log.error("configuration problem (the worker runs, activations will fail): %s", exc)
        self.delivery.warm()

    def close(self) -> None:
        self.detection.close()
        self.talkback.close()
        self.delivery.close()
        getattr(self.pulse, "close", lambda: None)()
        if self.receipts_queue is not None:
            self.receipts_queue.close()
        self.database.dispose()
