"""Publish latency of the status page: from a confirmed activation to its snapshot being readable from S3.

``python -m benchmarks.statuspage_latency [ROUNDS]`` (needs the dev extras: moto). In process, on
SQLite, against moto's S3 server started here: each round confirms the exchange-outage runbook,
sends its status batch (what a worker does first: the status channel is published before SMS and
mail), runs beat's status tick once and polls the bucket until ``index.html`` shows the incident;
then stands it down. A deployment adds up to one beat interval (2 s) between the status batch and
the tick, and the worker's queue time.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import yaml
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[1]


def main(rounds: int = 10) -> None:
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
        timings = []
        for n in range(rounds):
            marker = f'id="incident-{n + 1}"'  # the round's notice, as the page marks it
            started = time.perf_counter()
            accepted, _ = runtime.activate(runbook_id="exchange-outage", reason="bench", actor="bench")
            runtime.send_batch(accepted.batch_ids[0])  # the status batch: published first of all
            runtime.status.tick()
            while marker not in client.get_object(Bucket="bench", Key="index.html")["Body"].read().decode():
                runtime.status.tick()
            timings.append(time.perf_counter() - started)
            runtime.resolve(incident_id=accepted.incident_id, actor="bench", all_clear=False)
        runtime.close()
        ms = sorted(t * 1000 for t in timings)
        print(f"status page publish latency over {rounds} rounds (confirm -> index.html readable from S3):")
        print(f"  median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
