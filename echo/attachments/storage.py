"""Where attachment bytes live: the local filesystem or S3, chosen by ECHO_STORAGE.

This is the only module that imports boto3. Keys are random and never shown to anyone;
bytes always stream back through Echo.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def stored_before(self, cutoff: datetime) -> Iterator[str]: ...


KEY_PREFIX = "att/"
TEMP_SUFFIX = ".tmp"


def new_key() -> str:
    """A random, unguessable storage key (192 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("storage key escapes the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write through a temporary file, renamed into place; a failed write (a full disk) leaves nothing."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        """Every key (and left-over temporary file, as its relative path) last written before `cutoff`."""
        root = self.root / KEY_PREFIX
        if not root.is_dir():
            return
        limit = cutoff.timestamp()
        for entry in os.scandir(root):
            try:
                if entry.is_file() and entry.stat().st_mtime < limit:
                    yield KEY_PREFIX + entry.name
            except OSError:  # removed meanwhile
                continue


class S3Storage:
    def __init__(self, bucket: str, endpoint_url: str | None = None):
        import boto3

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        """Every key under the attachment prefix last written before `cutoff`, page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=KEY_PREFIX)
        for page in pages:
            for item in page.get("Contents", []):
                if item["LastModified"].astimezone(UTC) < cutoff:
                    yield item["Key"]


def init_app(app: Flask) -> None:
    settings = app.config["ECHO"]
    if settings.storage == "s3":
        app.extensions["echo_storage"] = S3Storage(settings.s3_bucket, settings.s3_endpoint_url)
    else:
        app.extensions["echo_storage"] = LocalStorage(settings.instance_path / "attachments")


def storage() -> Storage:
    return current_app.extensions["echo_storage"]
