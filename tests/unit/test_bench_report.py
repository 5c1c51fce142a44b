"""benchmarks/report.py judges issue 17's targets from results.json and renders the capacity table."""

from __future__ import annotations

from typing import Any

from benchmarks import report


def ttn(mode: str, n: int, ratio: float, cpu: float, mib: float, **extra: Any) -> dict[str, Any]:
    bound = n * 0.15 / 100 + 0.15
    return {
        "mode": mode,
        "n": n,
        "measured": True,
        "ttn_s": round(bound * ratio, 3),
        "bound_s": bound,
        "ratio": ratio,
        "cpu_s_per_1000_messages": cpu,
        "worker_peak_mib": [mib, mib - 1],
        "concurrency": 100,
        "latency_s": 0.15,
        "exactly_once": True,
        "twilio": {"peak_in_flight": 100, "by_status": {"201": n}},
        "sendgrid": {"by_status": {"202": 5}},
        **extra,
    }


def judged(results: dict[str, Any]) -> dict[str, tuple[str, bool | None]]:
    return {t["target"]: (t["measured"], t["met"]) for t in report.targets(results)}


def test_ttn_targets_at_5000_and_20000_in_both_modes_and_the_100k_run_with_its_bound() -> None:
    rows = [
        ttn("production", 5000, 1.08, 1.0, 150),
        ttn("embedded", 5000, 1.2, 0.8, 140),
        ttn("production", 20000, 1.12, 1.0, 150),
        ttn("embedded", 20000, 1.1, 0.8, 140),
        ttn("production", 100000, 1.05, 1.0, 170),
    ]
    throughput = {
        "mode": "production",
        "sms_per_s_ledger": 2100.0,
        "twilio": {"by_status": {}},
        "sendgrid": {"by_status": {}},
    }
    found = judged({"ttn": rows, "throughput": [throughput]})
    assert found["TTN ≤ 1.1 × bound, 5,000 recipients, production"][1] is True
    assert found["TTN ≤ 1.15 × bound, 5,000 recipients, embedded"][1] is False
    assert found["TTN ≤ 1.1 × bound, 20,000 recipients, production"][1] is False
    assert found["TTN ≤ 1.15 × bound, 20,000 recipients, embedded"][1] is True
    measured, met = found["100,000 people once (SMS + email), production, reported with the bound"]
    assert met is True and measured.endswith("bound 150.15 s (1.05 ×); worker peak 170 MiB; everyone once: yes")
    assert found["zero-latency throughput ≥ 2,000 SMS/s, production"] == ("2,100 SMS/s", True)


def test_flatness_is_judged_in_production_from_1000_to_50000_only() -> None:
    rows = [
        ttn("production", 1000, 1.3, 1.00, 150),
        ttn("production", 50000, 1.3, 1.14, 181),  # +14 % CPU, +20.7 % memory
        ttn("production", 100000, 1.3, 2.0, 400),  # run once: not part of the flatness targets
        ttn("embedded", 5000, 1.1, 0.5, 100),
        ttn("embedded", 20000, 1.1, 0.9, 300),
    ]
    found = judged({"ttn": rows})
    cpu = found["CPU per 1,000 messages flat within 15%, 1,000–50,000, production"]
    assert cpu == ("1.000 / 1.140 s (spread 14%)", True)
    memory = found["worker peak memory flat within 20%, 1,000–50,000, production"]
    assert memory == ("150 MiB at 1,000 → 181 MiB at 50,000", False)
    assert not any("embedded" in target and "flat" in target for target in found)
    assert found["TTN ≤ 1.1 × bound, 5,000 recipients, production"] == ("not run", None)  # not a failure


def test_the_capacity_table_shows_each_production_runs_server_rates() -> None:
    servers = {
        "seconds": 10.0,
        "messages": 10000,
        "pg_commits_per_s": 412.0,
        "pg_commits_per_1000_messages": 41.2,
        "pg_rows_written_per_s": 2105.0,
        "redis_commands_per_s": 3900.0,
        "redis_commands_per_message": 3.9,
        "redis_top": {"evalsha": 20000, "lpush": 110},
        "broker_tasks_per_s": 11.0,
        "worker_cores": 1.2,
        "server_cores": 0.3,
    }
    lines = report.capacity_table({"ttn": [ttn("production", 5000, 1.1, 1.0, 150, servers=servers)]})
    assert lines[0] == "## Capacity: what a run asks of the shared servers (production)"
    assert (
        "| 5,000 | 150 | 1,000 | 412 | 41 | 2,105 | 3,900 | 3.90 | 11.0 | 1.20 | 0.30 | evalsha 20,000, lpush 110 |"
        in (lines)
    )
    assert report.capacity_table({"ttn": [ttn("embedded", 5000, 1.1, 1.0, 150, servers=None)]}) == []


def test_the_paced_run_reports_delivery_against_the_hand_out_bound_and_counts_for_the_cap() -> None:
    paced = ttn("production", 5000, 1.1, 1.0, 150, sender_mps=250.0, last_delivered_s=21.0, first_sms_s=0.5)
    paced["ttn_s"] = 8.42
    paced["twilio"] = {"peak_in_flight": 101, "by_status": {"201": 5000}}
    results = {"ttn": [], "delivered": paced}
    text = "\n".join(report._delivered_section(paced))
    # 5,000 at 250 MPS: 20 s of hand-out after the first SMS at 0.5 s; delivered at 21 s is 1.02 × that.
    assert "| 5,000 | 250 | 8.42 | 20.00 | 21.00 | 1.02 | yes |" in text
    assert judged(results)["provider concurrency cap never exceeded (no 429 / 20429)"] == (
        "peak 101 in flight of 100 allowed; 0 answers 429",
        False,
    )
    assert report._delivered_section({**paced, "last_delivered_s": None}) == []
    callbacks = "callback ingestion ≥ 1,500 applied/s, none lost, none twice (production web)"
    assert judged({"ttn": []})[callbacks] == ("not run", None)
