"""Publish latency of the status page: from a confirmed activation to its snapshot being readable from S3.

``python -m benchmarks.statuspage_latency [ROUNDS] [--processes]`` (needs the dev extras: moto), on
SQLite, against moto's S3 server started here. Each round confirms the exchange-outage runbook
and polls the bucket until ``index.html`` shows the incident; then stands it down. In process
(the default) the round sends the activation's status batch and runs beat's status tick itself;
with ``--processes`` a real ``failover worker`` and ``failover beat`` (embedded broker) do it, so
the figure includes the broker, the worker's queue and the beat interval.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import yaml
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[1]


def main(rounds: int = 10, processes: bool = False) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    work = Path(tempfile.mkdtemp(prefix="failover-status-bench-"))
    try:
        config = work / "config"
        shutil.copytree(REPO / "config", config)
        (config / "status.yaml").write_text(
            yaml.safe_dump({"publish": [{"kind": "s3", "name": "s3", "bucket": "bench", "endpoint_url": endpoint}]})
        )
        os.environ.update(
            {
                "FAILOVER_DATA_DIR": str(work / "var"),
                "FAILOVER_CONFIG_DIR": str(config),
                "FAILOVER_RUNBOOKS_DIR": str(REPO / "runbooks"),
                "FAILOVER_DATABASE_URL": f"sqlite:///{work / 'failover.db'}",
                "FAILOVER_SECRET_KEY": "bench",
                "FAILOVER_ENV_FILE": "",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        from failover.db import migrate
        from failover.runtime import Runtime
        from failover.settings import load_settings

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        runtime = Runtime(load_settings())
        migrate(runtime.database)
        children: list[subprocess.Popen[bytes]] = []
        if processes:
            from failover.celery_app import create_celery

            create_celery(runtime)  # the runtime's batches go to the embedded broker
            log = (work / "processes.log").open("ab")
            for command in ("worker", "beat"):
                children.append(
                    subprocess.Popen([sys.executable, "-m", "failover", command], stdout=log, stderr=log, cwd=REPO)
                )
            time.sleep(8)  # both up and the first ticks done
        timings = []
        for n in range(rounds):
            marker = f'id="incident-{n + 1}"'  # the round's notice, as the page marks it
            started = time.perf_counter()
            accepted, _ = runtime.activations.activate(runbook_id="exchange-outage", reason="bench", actor="bench")
            if not processes:
                runtime.delivery.send_batch(accepted.batch_ids[0])  # the status batch: published first of all
                runtime.status.tick()
            while marker not in _index(client):
                if processes:
                    time.sleep(0.05)
                else:
                    runtime.status.tick()
            timings.append(time.perf_counter() - started)
            runtime.activations.resolve(incident_id=accepted.incident_id, actor="bench", all_clear=False)
        for child in children:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
        runtime.close()
        ms = sorted(t * 1000 for t in timings)
        how = "worker + beat processes" if processes else "in process"
        print(f"status page publish latency, {how}, {rounds} rounds (confirm -> index.html readable from S3):")
        print(f"  median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _index(client: Any) -> str:
    try:
        return str(client.get_object(Bucket="bench", Key="index.html")["Body"].read().decode())
    except client.exceptions.NoSuchKey:
        return ""


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 10, processes="--processes" in sys.argv)
