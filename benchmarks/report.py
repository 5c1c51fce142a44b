"""results.json → results.md (tables, targets) and ttn.png (TTN against N)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Issue 17's targets.
TARGET_TTN_RATIO = {"production": 1.1, "embedded": 1.15}
TARGET_TTN_SIZES = (5000, 20000)
TARGET_THROUGHPUT = 2000.0
TARGET_FIRST_SMS_P50 = {"production": 1.0, "embedded": 1.5}
# CPU per 1,000 messages and worker peak memory, production, from 1,000 to 50,000 people.
FLAT_SIZES = (1000, 50000)
TARGET_CPU_FLATNESS = 0.15
MEMORY_GROWTH_ALLOWED = 0.20  # "flat": peak at 50,000 within 20 % of the peak at 1,000
ONCE_N = 100000  # run once, production: reported with the bound
TARGET_CALLBACKS_PER_S = 1500


def write(results: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    paths = [directory / "results.json", directory / "results.md"]
    paths[0].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    paths[1].write_text(markdown(results))
    chart_path = chart(results, directory / "ttn.png")
    if chart_path is not None:
        paths.append(chart_path)
    return paths


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ttn_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in results.get("ttn", []) if row]


def _peer_ttn(rate: float | None, n: int) -> float | None:
    return n / rate if rate else None


def markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = [
        "# Benchmark results",
        "",
        f"Run {meta.get('started', '?')} on {meta.get('machine', '?')}, commit `{meta.get('commit', '?')}`, "
        f"{meta.get('wall_s', '?')} s in all. Machine load: {meta.get('load_note', 'not recorded')}.",
        "",
    ]
    scaled = meta.get("notes") or []
    for note in scaled:
        lines.append(f"- {note}")
    if scaled:
        lines.append("")

    rows = _ttn_rows(results)
    if rows:
        first = rows[0]
        lines += [
            f"## Time to notify everyone (SMS + email to each of N people, {first['latency_s'] * 1000:.0f} ms "
            f"provider latency, {first['concurrency']} concurrent requests allowed)",
            "",
            "TTN runs from the activation request to the last provider request accepted. The bound is "
            "N × latency / concurrency + latency (SMS; email needs ⌈N/1000⌉ requests, far less). "
            "CPU is the worker processes' user + system time per 1,000 messages (SMS and email both count). "
            "Last SMS delivered (runs with `--sender-mps`): the fake Twilio hands the SMS out at that many "
            "messages per second and posts signed sent/delivered callbacks to the web; the time runs from the "
            "activation request to the last ledger row delivered (— : a run without paced receipts).",
            "",
            "| N | mode | TTN s | bound s | TTN / bound | SMS done s | email done s | first SMS s | ledger final s "
            "| CPU s / 1k msgs | worker peak MiB | Twilio in flight, mean / peak | 429s | tasks run / batches "
            "| everyone once | last SMS delivered s |",
            "| ---: | --- |" + " ---: |" * 12 + " :---: | ---: |",
        ]
        for row in rows:
            if not row.get("measured", True):
                lines.append(
                    f"| {row['n']:,} | {row['mode']} | ~{_fmt(row.get('ttn_s'), 1)} (extrapolated) | "
                    f"{_fmt(row['bound_s'])} | ~{_fmt(row.get('ratio'))} | | | | | | | | | | | — |"
                )
                continue
            too_many = row["twilio"]["by_status"].get("429", 0) + row["sendgrid"]["by_status"].get("429", 0)
            lines.append(
                f"| {row['n']:,} | {row['mode']} | {_fmt(row['ttn_s'])} | {_fmt(row['bound_s'])} | "
                f"{_fmt(row['ratio'])} | {_fmt(row['sms_done_s'])} | {_fmt(row['email_done_s'])} | "
                f"{_fmt(row['first_sms_s'])} | {_fmt(row['ledger_final_s'])} | "
                f"{_fmt(row['cpu_s_per_1000_messages'], 3)} | "
                f"{' / '.join(_fmt(m, 0) for m in row['worker_peak_mib'])} | "
                f"{_fmt(row['twilio']['mean_in_flight'], 0)} / {row['twilio']['peak_in_flight']} | {too_many} | "
                f"{row['tasks']['send_batch_tasks']:,} / {row['batches']:,} | {_fmt(row['exactly_once'])} | "
                f"{_delivered(row)} |"
            )
        peers = results.get("peers", {})
        if peers:
            lines += [
                "",
                "Peers against the same fake (150 ms, same cap), extrapolated from a sample: TTN = N / measured rate "
                "(SMS only; they send no email).",
                "",
                "| N | bound s | " + " | ".join(p["label"] for p in peers.values()) + " |",
                "| ---: | ---: | " + " | ".join("---:" for _ in peers) + " |",
            ]
            seen: set[int] = set()
            for row in rows:
                if row["n"] in seen:
                    continue
                seen.add(row["n"])
                cells = [_fmt(_peer_ttn(p.get("sms_per_s"), row["n"]), 0) for p in peers.values()]
                lines.append(f"| {row['n']:,} | {_fmt(row['bound_s'])} | " + " | ".join(cells) + " |")
            lines.append("")
            for peer in peers.values():
                lines.append(
                    f"- {peer['label']}: {_fmt(peer.get('sms_per_s'))} SMS/s over a sample of {peer.get('sample')} "
                    f"at {peer.get('latency_ms', 150):.0f} ms"
                    + (
                        f"; {_fmt(peer.get('zero_latency_sms_per_s'), 0)} SMS/s with no latency"
                        if peer.get("zero_latency_sms_per_s")
                        else ""
                    )
                )
        lines.append("")
        lines.append("![TTN against N](ttn.png)")
        lines.append("")

    measured = [row for row in rows if row.get("measured", True)]
    if measured:
        lines += [
            "## During each TTN run: the beat sweep, the servers, the machine",
            "",
            "The sweep is the beat's safety net (every 2 s, on its own queue, run by a worker); it republishes "
            "batches with due pending rows that the broker refused, that were due again after their last "
            "publish, or that were neither published nor started for FAILOVER_REPUBLISH_AFTER (120 s). "
            "Busy cores are the whole machine's; 'others' is what processes outside the benchmark used meanwhile.",
            "",
            "| N | mode | accept s | sweeps run | sweep worker s | batches republished | PostgreSQL + Redis CPU s "
            "| busy cores (of 2) | others' cores |",
            "| ---: | --- |" + " ---: |" * 7,
        ]
        for row in measured:
            tasks, machine = row["tasks"], row["machine"]
            servers = _fmt(row["db_broker_server_cpu_s"], 1) if row["mode"] == "production" else "in the worker"
            lines.append(
                f"| {row['n']:,} | {row['mode']} | {_fmt(row['accept_s'])} | {tasks['sweep_tasks']} | "
                f"{_fmt(tasks['sweep_s'], 1)} | {tasks['republished']:,} | {servers} | "
                f"{_fmt(machine['busy_cores'])} | {_fmt(machine['foreign_cores'])} |"
            )
        lines.append("")

    lines += capacity_table(results)

    throughput = [row for row in results.get("throughput", []) if row]
    if throughput:
        lines += [
            "## Throughput with no provider latency (SMS only, whole durable path)",
            "",
            "| N | mode | SMS/s, to the last status recorded | SMS/s, at the provider | CPU s / 1k msgs "
            "| peak in flight |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for row in throughput:
            lines.append(
                f"| {row['n']:,} | {row['mode']} | {_fmt(row['sms_per_s_ledger'], 0)} | "
                f"{_fmt(row['sms_per_s_provider'], 0)} | {_fmt(row['cpu_s_per_1000_messages'], 3)} | "
                f"{row['twilio']['peak_in_flight']} |"
            )
        lines.append("")

    lines += _callbacks_section(results.get("callbacks"))
    lines += _delivered_section(results.get("delivered"))

    first = results.get("first_message", [])
    if first:
        lines += [
            "## Latency to the first message",
            "",
            "| trigger | mode | runs | people | p50 s | p95 s | max s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in first:
            if row.get("measured"):
                lines.append(
                    f"| {row['trigger']} | {row['mode']} | {row['runs']} | {row['people']:,} | "
                    f"{_fmt(row['p50_s'], 3)} | {_fmt(row['p95_s'], 3)} | {_fmt(row['max_s'], 3)} |"
                )
            else:
                lines.append(f"| {row['trigger']} | {row['mode']} | {row['why']} | | | | |")
        lines.append("")
        for row in first:
            if row.get("measured") and row["trigger"] == "graph_flip":
                lines += [
                    f"graph_flip: from the moment the fake Graph lists an open serviceInterruption / incident for "
                    f"Exchange Online to the first SMS request at the fake Twilio. The watcher polls Graph every "
                    f"{row['poll_interval_s']:g} s and each flip lands at a random point of the poll cycle, so "
                    f"up to one interval is waiting for the poll; from Graph's answer that carried the flip to the "
                    f"first SMS took p50 {_fmt(row['after_poll_p50_s'], 3)} s, max "
                    f"{_fmt(row['after_poll_max_s'], 3)} s. Each flip opened an incident of its own and was "
                    f"resolved by the watcher's all-clear before the next ({row['incidents']} incidents, "
                    f"everyone reached once each time: {_fmt(row['exactly_once'])}).",
                    "",
                ]

    fakes = results.get("fakes")
    late = meta.get("twilio_late_ms") or {}
    if fakes:
        lines += [
            "## The fakes' own overhead",
            "",
            f"{fakes['requests']:,} sequential keep-alive POSTs with no latency: the fake spent "
            f"{fakes['fake_cpu_ms_per_request']} ms of CPU per request (handler p50 {fakes['handler_ms']['p50']} ms, "
            f"p99 {fakes['handler_ms']['p99']} ms); a whole round trip took p50 {fakes['round_trip_ms']['p50']} ms. "
            f"Under 1 ms per request: {_fmt(fakes['under_1ms'])}. During the TTN runs the fake processes used "
            f"{_fmt(meta.get('fake_cpu_ms_per_request_max'), 3)} ms of CPU per request at most, and Twilio's "
            f"answers came later than the configured latency by p50 {_fmt(late.get('p50_max'))} ms and p99 "
            f"{_fmt(late.get('p99_max'))} ms at worst (a run's p50 / p99; the machine's cores were busy).",
            "",
        ]

    lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | :---: |"]
    for target in results.get("targets", []):
        lines.append(f"| {target['target']} | {target['measured']} | {_fmt(target['met'])} |")
    lines.append("")
    for profile in results.get("profile") or []:
        summary = profile.get("summary")
        if not summary:
            lines += ["## Profile", "", f"Not recorded: {profile.get('why', 'unknown')}", ""]
            continue
        lines += [
            f"## Where the workers' time goes: py-spy, {profile['mode']}, N = {profile['n']:,}, "
            f"{profile['latency_s'] * 1000:.0f} ms latency ({profile['runbook']})",
            "",
            f"{summary['cpu_s_sampled']} s of samples of the thread holding the GIL in {len(profile['files'])} "
            f"workers (their CPU from /proc: {profile['worker_cpu_s']} s); on average "
            f"{profile['mean_in_flight']} Twilio requests were in flight.",
            "",
        ]
        for title, key in (
            ("thread", "by_thread"),
            ("component (standard-library time charged to its caller)", "by_component"),
            ("failover function, inclusive", "inclusive_by_function"),
        ):
            lines += [f"| {title} | share |", "| --- | ---: |"]
            lines += [f"| {r['what']} | {r['share'] * 100:.0f} % |" for r in summary[key] if r["share"] >= 0.005]
            lines.append("")
    return "\n".join(lines)


def capacity_table(results: dict[str, Any]) -> list[str]:
    """What each production run asked of PostgreSQL, Redis and the broker, per second of the run (README's
    capacity model cites these)."""
    rows = [r for r in _ttn_rows(results) + list(results.get("throughput", [])) if r and r.get("servers")]
    if not rows:
        return []
    lines = [
        "## Capacity: what a run asks of the shared servers (production)",
        "",
        "Deltas over the run (activation request to the last row final): PostgreSQL's `pg_stat_database` "
        "(committed transactions; rows inserted + updated + deleted), Redis `INFO commandstats` (every command: "
        "the guard's, the broker's, the beat's lease; the commands a Lua script runs count besides its EVALSHA, "
        "which is the round trip), broker tasks from the workers' logs; cores = CPU seconds per second of the run "
        "(all worker processes; PostgreSQL with its backends and Redis). Latency 0 = the throughput run.",
        "",
        "| N | latency ms | messages/s | PG commits/s | PG commits / 1k msgs | PG rows written/s "
        "| Redis cmds/s | Redis cmds / msg | broker tasks/s | worker cores | PG + Redis cores | top Redis commands |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        servers = row["servers"]
        latency = row.get("latency_s", 0.0) * 1000
        top = ", ".join(f"{name} {calls:,}" for name, calls in list(servers["redis_top"].items())[:4])
        lines.append(
            f"| {row['n']:,} | {latency:.0f} | {_fmt(servers['messages'] / servers['seconds'], 0)} | "
            f"{_fmt(servers['pg_commits_per_s'], 0)} | {_fmt(servers['pg_commits_per_1000_messages'], 0)} | "
            f"{_fmt(servers['pg_rows_written_per_s'], 0)} | {_fmt(servers['redis_commands_per_s'], 0)} | "
            f"{_fmt(servers['redis_commands_per_message'])} | {_fmt(servers.get('broker_tasks_per_s'), 1)} | "
            f"{_fmt(servers.get('worker_cores'))} | {_fmt(servers.get('server_cores'))} | {top} |"
        )
    lines.append("")
    return lines


def main() -> None:
    """Render results.md and ttn.png again from a results.json: ``python -m benchmarks.report [DIR]``."""
    import sys

    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results"
    results = json.loads((directory / "results.json").read_text())
    for path in write(results, directory):
        print(path)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rows = [row for row in _ttn_rows(results) if row.get("measured", True)]
    for n in TARGET_TTN_SIZES:
        for mode, limit in TARGET_TTN_RATIO.items():
            row = next((r for r in rows if r["mode"] == mode and r["n"] == n), None)
            out.append(
                {
                    "target": f"TTN ≤ {limit} × bound, {n:,} recipients, {mode}",
                    "measured": f"{row['ratio']} × ({row['ttn_s']} s / {row['bound_s']} s)" if row else "not run",
                    "met": None if row is None else row["ratio"] <= limit,  # None: not run
                }
            )
    once = next((r for r in rows if r["mode"] == "production" and r["n"] == ONCE_N), None)
    out.append(
        {
            "target": f"{ONCE_N:,} people once (SMS + email), production, reported with the bound",
            "measured": (
                f"TTN {once['ttn_s']} s, bound {once['bound_s']} s ({once['ratio']} ×); worker peak "
                f"{max(once['worker_peak_mib']):.0f} MiB; everyone once: {_fmt(once['exactly_once'])}"
            )
            if once
            else "not run",
            "met": None if once is None else bool(once["exactly_once"]),
        }
    )
    best = max(
        (r for r in results.get("throughput", []) if r and r["mode"] == "production"),
        default=None,
        key=lambda r: r["sms_per_s_ledger"],
    )
    out.append(
        {
            "target": f"zero-latency throughput ≥ {TARGET_THROUGHPUT:,.0f} SMS/s, production",
            "measured": f"{best['sms_per_s_ledger']:,.0f} SMS/s" if best else "not run",
            "met": None if best is None else best["sms_per_s_ledger"] >= TARGET_THROUGHPUT,
        }
    )
    for mode, limit in TARGET_FIRST_SMS_P50.items():
        row = next(
            (r for r in results.get("first_message", []) if r["mode"] == mode and r["trigger"] == "api_confirm"), None
        )
        measured = row is not None and row.get("measured")
        out.append(
            {
                "target": f"confirm → first SMS p50 ≤ {limit} s, {mode}",
                "measured": f"p50 {row['p50_s']} s, p95 {row['p95_s']} s" if measured and row else "not run",
                "met": bool(row["p50_s"] <= limit) if measured and row else None,
            }
        )
    graph = next((r for r in results.get("first_message", []) if r["trigger"] == "graph_flip"), None)
    graph_met: bool | None = None
    if graph is None:
        graph_measured = "not run"
    elif not graph.get("measured"):
        graph_measured = graph["why"]
    else:
        # Judged on every run: the slowest flip (with 10 runs also the p95) within the poll interval + 1 s.
        graph_measured = (
            f"p50 {graph['p50_s']} s, p95 {graph['p95_s']} s, max {graph['max_s']} s over {graph['runs']} flips "
            f"at a {graph['poll_interval_s']:g} s poll interval (≤ {graph['target_s']:g} s wanted; "
            f"{graph['mode']})"
        )
        graph_met = graph["max_s"] <= graph["target_s"]
    out.append({"target": "Graph flip → first SMS ≤ poll interval + 1 s", "measured": graph_measured, "met": graph_met})
    for mode in ("production",):
        low, high = FLAT_SIZES
        measured_rows = sorted((r for r in rows if r["mode"] == mode and low <= r["n"] <= high), key=lambda r: r["n"])
        if len(measured_rows) < 2:
            continue
        cpu = [r["cpu_s_per_1000_messages"] for r in measured_rows]
        spread = max(cpu) / min(cpu) - 1
        out.append(
            {
                "target": f"CPU per 1,000 messages flat within {TARGET_CPU_FLATNESS:.0%}, "
                f"{measured_rows[0]['n']:,}–{measured_rows[-1]['n']:,}, {mode}",
                "measured": " / ".join(f"{c:.3f}" for c in cpu) + f" s (spread {spread:.0%})",
                "met": spread <= TARGET_CPU_FLATNESS,
            }
        )
        smallest, largest = measured_rows[0], measured_rows[-1]
        small, large = max(smallest["worker_peak_mib"]), max(largest["worker_peak_mib"])
        out.append(
            {
                "target": f"worker peak memory flat within {MEMORY_GROWTH_ALLOWED:.0%}, "
                f"{measured_rows[0]['n']:,}–{measured_rows[-1]['n']:,}, {mode}",
                "measured": f"{small:.0f} MiB at {smallest['n']:,} → {large:.0f} MiB at {largest['n']:,}",
                "met": large <= small * (1 + MEMORY_GROWTH_ALLOWED),
            }
        )
    out.append(_callbacks_target(results.get("callbacks")))
    paced = [results["delivered"]] if results.get("delivered") else []
    capped = rows + paced
    all_runs = capped + [r for r in results.get("throughput", []) if r]
    worst = max((r["twilio"]["peak_in_flight"] for r in capped), default=0)
    cap = capped[0]["concurrency"] if capped else None
    too_many = sum(r["twilio"]["by_status"].get("429", 0) + r["sendgrid"]["by_status"].get("429", 0) for r in all_runs)
    out.append(
        {
            "target": "provider concurrency cap never exceeded (no 429 / 20429)",
            "measured": f"peak {worst} in flight of {cap} allowed; {too_many} answers 429",
            "met": None if not capped else worst <= (cap or 0) and too_many == 0,
        }
    )
    return out


def _delivered(row: dict[str, Any]) -> str:
    """Time to the last SMS delivered, with receipts paced by the sender pool's MPS; — when not paced."""
    if not row.get("sender_mps") or row.get("last_delivered_s") is None:
        return "—"
    return f"{_fmt(row['last_delivered_s'])} at {row['sender_mps']:g} MPS"


def _callbacks_section(row: dict[str, Any] | None) -> list[str]:
    if not row:
        return []
    return [
        "## Callback ingestion (signed Twilio status callbacks to the production web)",
        "",
        f"{row['callbacks']:,} status callbacks (queued, sent, delivered for each of {row['rows']:,} sent ledger "
        f"rows), signed by the twilio SDK's RequestValidator over FAILOVER_PUBLIC_URL, posted by {row['clients']} "
        f"keep-alive clients to gunicorn ({row['web_workers']} workers × 8 threads); the web verifies and queues "
        "them (Redis Stream), the workers apply them a group per transaction. Applied/s runs from the first post "
        "to the last callback applied in the database.",
        "",
        "| callbacks | applied/s | posted/s | response p50 / p99 ms | none lost | none applied twice "
        "| CPU s web / workers / PostgreSQL + Redis |",
        "| ---: | ---: | ---: | ---: | :---: | :---: | ---: |",
        f"| {row['callbacks']:,} | {_fmt(row['applied_per_s'], 0)} | {_fmt(row['posted_per_s'], 0)} | "
        f"{_fmt(row['response_ms']['p50'], 1)} / {_fmt(row['response_ms']['p99'], 1)} | {_fmt(row['none_lost'])} | "
        f"{_fmt(row['none_twice'])} | {row['cpu']['web_s']} / {row['cpu']['workers_s']} / {row['cpu']['servers_s']} |",
        "",
    ]


def _delivered_section(row: dict[str, Any] | None) -> list[str]:
    """One run with the sender pool's pace: the phones get the SMS later than the API accepts them."""
    if not row or row.get("last_delivered_s") is None:
        return []
    handout = row["n"] / row["sender_mps"]
    return [
        "## Time to the last SMS delivered (receipts paced by the sender pool)",
        "",
        f"Production, {row['n']:,} people (SMS + email), {row['latency_s'] * 1000:.0f} ms latency: the fake Twilio "
        f"hands the SMS out at {row['sender_mps']:g} messages per second (FAILOVER_TWILIO_SENDER_MPS, which the "
        "preview uses) and posts signed sent/delivered callbacks to the production web (gunicorn), which queues "
        "them; the workers apply them. The hand-out bound is N / MPS from the first SMS accepted.",
        "",
        "| N | MPS | TTN s (last accepted) | hand-out bound s | last SMS delivered s | delivered / (first SMS + bound) "
        "| everyone once |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
        f"| {row['n']:,} | {row['sender_mps']:g} | {_fmt(row['ttn_s'])} | {_fmt(handout)} | "
        f"{_fmt(row['last_delivered_s'])} | {_fmt(row['last_delivered_s'] / (row['first_sms_s'] + handout))} | "
        f"{_fmt(row['exactly_once'])} |",
        "",
    ]


def _callbacks_target(row: dict[str, Any] | None) -> dict[str, Any]:
    target = f"callback ingestion ≥ {TARGET_CALLBACKS_PER_S:,} applied/s, none lost, none twice (production web)"
    if not row:
        return {"target": target, "measured": "not run", "met": None}
    return {
        "target": target,
        "measured": f"{_fmt(row['applied_per_s'], 0)} applied/s, p99 {_fmt(row['response_ms']['p99'], 1)} ms, "
        f"lost none: {_fmt(row['none_lost'])}, twice none: {_fmt(row['none_twice'])}",
        "met": bool(row["none_lost"] and row["none_twice"] and (row["applied_per_s"] or 0) >= TARGET_CALLBACKS_PER_S),
    }


def chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = _ttn_rows(results)
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    sizes = sorted({r["n"] for r in rows})
    styles = {"production": ("o-", "tab:blue"), "embedded": ("s-", "tab:orange")}
    for mode, (marker, colour) in styles.items():
        points = sorted((r["n"], r["ttn_s"], r.get("measured", True)) for r in rows if r["mode"] == mode)
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker, color=colour, label=f"failover, {mode}")
            extrapolated = [p for p in points if not p[2]]
            if extrapolated:
                axes.plot(
                    [p[0] for p in extrapolated],
                    [p[1] for p in extrapolated],
                    "x",
                    color=colour,
                    markersize=10,
                    label=f"{mode}: extrapolated",
                )
    bounds = {r["n"]: r["bound_s"] for r in rows}
    axes.plot(sizes, [bounds[n] for n in sizes], "k--", marker=".", label="physical bound")
    for peer, style in zip(results.get("peers", {}).values(), ("v:", "^-."), strict=False):
        rate = peer.get("sms_per_s")
        if rate:
            label = f"{peer['label']} (extrapolated from {peer['sample']} SMS)"
            axes.plot(sizes, [n / rate for n in sizes], style, color="grey", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("recipients N (SMS + email each)")
    axes.set_ylabel("time to notify everyone, s")
    first = rows[0]
    axes.set_title(f"TTN at {first['latency_s'] * 1000:.0f} ms latency, {first['concurrency']} concurrent requests")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


if __name__ == "__main__":
    main()
