"""Gauges computed from the database at scrape time: right whichever process did the work, however many there are.

Messages by channel, transport and state; the queue (due pending rows) and
the age of its oldest row; the watcher's state per service; the last
successful Graph poll and the last reading of each detection source.

Other parts of failover add their own with :func:`register` (a function
``(session, now) -> iterable of metric families``): the people snapshot's age,
canary results, whatever needs the database to answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from failover.models import (
    Activation,
    ActivationState,
    Delivery,
    DeliveryStatus,
    DetectionVote,
    DispatchBatch,
    WatchedService,
    WatchHead,
)

Source = Callable[[Session, dt.datetime], Iterable[Metric]]
_sources: list[Source] = []
PHASES = ("healthy", "suspected", "confirmed", "recovering")
GRAPH_STATES = ("ok", "unreachable", "misconfigured", "throttled")


def register(source: Source) -> Source:
    """Add gauges of another part of failover to /metrics (usable as a decorator)."""
    if source not in _sources:
        _sources.append(source)
    return source


def collect(session: Session, now: dt.datetime, circuits: Mapping[str, Any] | None = None) -> list[Metric]:
    out: list[Metric] = [*_ledger(session, now), *_watch(session), *_activations(session)]
    if circuits is not None:
        out.append(_circuits(circuits))
    for source in list(_sources):
        out.extend(source(session, now))
    return out


def _ledger(session: Session, now: dt.datetime) -> list[Metric]:
    messages = GaugeMetricFamily(
        "failover_messages",
        "Ledger rows (one message to one person over one channel) by channel, transport and state.",
        labels=["channel", "transport", "state"],
    )
    for channel, transport, status, count in session.execute(
        select(Delivery.channel, Delivery.transport, Delivery.status, func.count()).group_by(
            Delivery.channel, Delivery.transport, Delivery.status
        )
    ):
        messages.add_metric([channel, transport or "", status], count)
    due = (Delivery.status == DeliveryStatus.PENDING) & or_(
        Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now
    )
    depth, oldest = session.execute(
        select(func.count(), func.min(func.coalesce(Delivery.next_attempt_at, Delivery.updated_at))).where(due)
    ).one()
    queue = GaugeMetricFamily("failover_queue_depth", "Messages due to be sent now and not yet claimed by a worker.")
    queue.add_metric([], depth or 0)
    age = GaugeMetricFamily(
        "failover_queue_oldest_seconds", "How long the oldest due message has waited (0 when none waits)."
    )
    age.add_metric([], max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0)
    in_flight = GaugeMetricFamily(
        "failover_messages_in_flight", "Messages being sent now or in doubt (may have reached the provider)."
    )
    in_flight.add_metric(
        [],
        session.scalar(
            select(func.count()).where(Delivery.status.in_((DeliveryStatus.SENDING, DeliveryStatus.IN_DOUBT)))
        )
        or 0,
    )
    unpublished = GaugeMetricFamily(
        "failover_batches_unpublished", "Batches the broker has not accepted yet (the sweep retries them)."
    )
    unpublished.add_metric([], session.scalar(select(func.count()).where(DispatchBatch.published_at.is_(None))) or 0)
    return [messages, queue, age, in_flight, unpublished]


def _watch(session: Session) -> list[Metric]:
    phase = GaugeMetricFamily(
        "failover_watch_phase",
        "Detection state of each watched service (1 for its current phase).",
        labels=["service", "phase"],
    )
    for service, current in session.execute(select(WatchedService.service, WatchedService.phase)):
        for name in sorted({*PHASES, current}):
            phase.add_metric([service, name], 1.0 if name == current else 0.0)
    head = session.get(WatchHead, 1)
    graph = GaugeMetricFamily(
        "failover_graph_state",
        "The last Graph poll's result (1 for the current state; none before the first poll).",
        labels=["state"],
    )
    graph_ok = GaugeMetricFamily(
        "failover_graph_last_success_timestamp_seconds", "When Graph last answered a service health poll."
    )
    if head is not None and head.graph_state:
        for name in sorted({*GRAPH_STATES, head.graph_state}):
            graph.add_metric([name], 1.0 if name == head.graph_state else 0.0)
    if head is not None and head.graph_ok_at is not None:
        graph_ok.add_metric([], _aware(head.graph_ok_at).timestamp())
    sources = GaugeMetricFamily(
        "failover_source_last_seen_timestamp_seconds",
        "When each detection source (Graph, a probe, a webhook sender) last gave a reading.",
        labels=["source"],
    )
    for voter, seen in session.execute(
        select(DetectionVote.voter, func.max(DetectionVote.seen_at)).group_by(DetectionVote.voter)
    ):
        if seen is not None:
            sources.add_metric([voter], _aware(seen).timestamp())
    return [phase, graph, graph_ok, sources]


def _activations(session: Session) -> list[Metric]:
    open_ = GaugeMetricFamily(
        "failover_activations", "Activations by state (queued ones are still sending).", labels=["state", "drill"]
    )
    for state, drill, count in session.execute(
        select(Activation.state, Activation.drill, func.count()).group_by(Activation.state, Activation.drill)
    ):
        open_.add_metric([state, "true" if drill else "false"], count)
    waiting = GaugeMetricFamily("failover_activations_awaiting_approval", "Activations waiting for a second operator.")
    waiting.add_metric(
        [], session.scalar(select(func.count()).where(Activation.state == ActivationState.PENDING_APPROVAL)) or 0
    )
    return [open_, waiting]


def _circuits(circuits: Mapping[str, Any]) -> Metric:
    family = GaugeMetricFamily(
        "failover_circuit_open", "1 while a provider's circuit breaker is open (calls refused).", labels=["transport"]
    )
    for transport, state in sorted(circuits.items()):
        family.add_metric([transport], 1.0 if state.open else 0.0)
    return family


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
