"""The status page's S3-compatible publish target, through boto3 (AWS S3, Cloudflare R2, Backblaze B2, MinIO).

A snapshot is written so that a reader never sees a half-updated page: every
other object first (unchanged ones are skipped by their MD5 ETag), the
entry point ``index.html`` last, and only then are objects of earlier
snapshots that are no longer part of the set deleted. Any refusal (403, a
missing bucket), timeout or lost connection stops the run before the index
is touched, so the previously published page stays whole (a run slower than
its budget stops there too, so a slow bucket never holds a worker for long); the caller
retries later. Credentials come from boto3's usual chain (AWS_* variables,
profiles, instance roles); none is ever logged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from failover.errors import FailoverError

INDEX = "index.html"


class PublishError(FailoverError):
    """A publish target refused or failed; the previous snapshot is still what readers see."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class SnapshotFile(Protocol):
    """One file of a snapshot (publish.snapshot.File): where it goes, what it holds, how it is served."""

    @property
    def path(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def content_type(self) -> str: ...
    @property
    def cache_control(self) -> str: ...


class S3Publisher:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        budget: float = 60.0,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        # A slow target must not hold a worker: past the budget the run stops before the index (retried later).
        self.budget, self.clock = budget, clock
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            # R2, B2 and MinIO all take path-style requests; bucket host names need DNS a local server lacks.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        session = boto3.session.Session()  # its own: the default session would keep the first credentials it saw
        self.client = client or session.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)

    def publish(self, files: Sequence[SnapshotFile]) -> dict[str, int]:
        """Write the snapshot; returns counts (written, unchanged, deleted). PublishError on any failure."""
        try:
            existing = self._existing()
            wanted = {self.prefix + f.path for f in files}
            ordered = sorted(files, key=lambda f: f.path == INDEX)  # the index last
            written = unchanged = 0
            deadline = self.clock() + self.budget
            for file in ordered:
                if self.clock() > deadline:
                    raise PublishError(
                        f"s3://{self.bucket}/{self.prefix}: slower than {self.budget:.0f} s; the index was not written",
                        code="slow",
                    )
                key = self.prefix + file.path
                if (
                    existing.get(key) == hashlib.md5(file.body, usedforsecurity=False).hexdigest()
                    and file.path != INDEX
                ):
                    unchanged += 1
                    continue
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=file.body,
                    ContentType=file.content_type,
                    CacheControl=file.cache_control,
                )
                written += 1
            stale = sorted(key for key in existing if key not in wanted)
            for start in range(0, len(stale), 1000):
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]], "Quiet": True},
                )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(error.get("Code") or status or "error")
            raise PublishError(f"s3://{self.bucket}/{self.prefix}: HTTP {status} {code}", code=code) from None
        except BotoCoreError as exc:
            raise PublishError(f"s3://{self.bucket}/{self.prefix}: {type(exc).__name__}", code="network") from None
        return {"written": written, "unchanged": unchanged, "deleted": len(stale)}

    def _existing(self) -> dict[str, str]:
        """Keys under the prefix and their ETags (the MD5 of single-part uploads, which is all we make)."""
        found: dict[str, str] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = str(item.get("ETag", "")).strip('"')
        return found
