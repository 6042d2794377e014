"""Object store for plate crops (JPEG) and event clips (MP4).

Keys follow ``city/camera/YYYY/MM/DD/<event id>.{jpg,mp4}`` (:func:`object_key`). Two
implementations of :class:`ObjectStore`:

* :class:`S3ObjectStore` — any S3 API (MinIO in production) through the ``minio`` SDK;
* :class:`LocalObjectStore` — files under a directory, for the embedded demo. Its "presigned"
  URLs are ``{base_url}/files/{key}?exp=<unix>&sig=<hex>`` with
  ``sig = HMAC-SHA256(secret, f"{key}|{exp}")``; the web app checks them with :meth:`verify`.

Writes are idempotent: the same key written twice holds the last bytes, so re-emitted events
re-uploading their crop are harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import mimetypes
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, timedelta
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import quote

from minio import Minio
from minio.error import S3Error

from gtvision.config import Settings
from gtvision.events import EventBase

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"})


class ObjectStore(Protocol):
    """Minimal blob store used by the sinks and the web app."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (overwrite)."""
        ...

    def get(self, key: str) -> bytes:
        """Bytes stored under ``key``; raises ``KeyError`` when missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when missing)."""
        ...

    def presigned_get(self, key: str, ttl_s: int) -> str:
        """A URL that lets anyone holding it GET ``key`` for ``ttl_s`` seconds."""
        ...


def object_key(event: EventBase, ext: str) -> str:
    """``city/camera/YYYY/MM/DD/<event id>.<ext>`` with the event's UTC date."""
    day = event.ts.astimezone(UTC)
    return f"{event.city_id}/{event.camera_id}/{day:%Y/%m/%d}/{event.id}.{ext}"


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path (no ``..``, no leading ``/``); else raise."""
    parts = PurePosixPath(key).parts
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in {"..", "."} for p in parts)
    ):
        msg = f"object key must be a relative path without '..', got {key!r}"
        raise ValueError(msg)
    return key


class S3ObjectStore:
    """S3-compatible store (MinIO, AWS, moto) via the ``minio`` SDK."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
    ) -> None:
        self.bucket = bucket
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet."""
        if not self._client.bucket_exists(self.bucket):
            self._client.make_bucket(self.bucket)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload ``data`` as ``key``."""
        self._client.put_object(
            self.bucket, check_key(key), io.BytesIO(data), len(data), content_type=content_type
        )

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload the file ``path`` as ``key`` (streamed: large exports)."""
        self._client.fput_object(self.bucket, check_key(key), str(path), content_type=content_type)

    def get(self, key: str) -> bytes:
        """Download ``key``."""
        try:
            resp = self._client.get_object(self.bucket, check_key(key))
        except S3Error as err:
            if err.code in _MISSING_CODES:
                raise KeyError(key) from None
            raise
        try:
            return bytes(resp.read())
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        """``stat_object`` succeeds."""
        try:
            self._client.stat_object(self.bucket, check_key(key))
        except S3Error as err:
            if err.code in _MISSING_CODES:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._client.remove_object(self.bucket, check_key(key))

    def presigned_get(self, key: str, ttl_s: int) -> str:
        """S3 V4 presigned GET URL."""
        url: str = self._client.presigned_get_object(
            self.bucket, check_key(key), expires=timedelta(seconds=ttl_s)
        )
        return url


class LocalObjectStore:
    """Files under ``root``; presigned URLs are HMAC-signed links served by the web app."""

    def __init__(self, root: Path, secret: bytes, base_url: str) -> None:
        if not secret:
            msg = "LocalObjectStore needs a non-empty signing secret"
            raise ValueError(msg)
        self.root = root
        self._secret = secret
        self._base = base_url.rstrip("/")

    def path(self, key: str) -> Path:
        """File that holds ``key`` (the web app serves it after :meth:`verify`)."""
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write atomically (temp file + rename)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Copy the file ``path`` as ``key`` (atomically, like :meth:`put`)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """Read ``key``."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        """The file exists."""
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        """Unlink the file."""
        self.path(key).unlink(missing_ok=True)

    def _sig(self, key: str, exp: int) -> str:
        return hmac.new(self._secret, f"{key}|{exp}".encode(), hashlib.sha256).hexdigest()

    def presigned_get(self, key: str, ttl_s: int) -> str:
        """``{base_url}/files/{key}?exp=<unix>&sig=<hex>``."""
        exp = int(time.time()) + ttl_s
        return f"{self._base}/files/{quote(check_key(key))}?exp={exp}&sig={self._sig(key, exp)}"

    def verify(self, key: str, exp: int | str, sig: str) -> bool:
        """True when ``sig`` signs ``key`` until ``exp`` and ``exp`` is not past."""
        try:
            when = int(exp)
            check_key(key)
        except ValueError:
            return False
        if when < time.time():
            return False
        return hmac.compare_digest(self._sig(key, when), sig)

    @staticmethod
    def content_type(key: str) -> str:
        """MIME type guessed from the key's extension."""
        return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _local_secret(settings: Settings, root: Path) -> bytes:
    jwt = settings.jwt_secret.get_secret_value()
    if jwt:
        return hmac.new(jwt.encode(), b"gtvision-object-urls", hashlib.sha256).digest()
    key_file = root / ".signing-key"
    if not key_file.exists():
        root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.05)  # another process is writing it right now
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    return key_file.read_bytes()


def make_store(settings: Settings) -> S3ObjectStore | LocalObjectStore:
    """S3 when ``GTV_S3_ENDPOINT`` is set, else files under ``GTV_DATA_DIR/objects``."""
    if settings.s3_endpoint:
        store = S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        store.ensure_bucket()
        return store
    root = settings.data_dir / "objects"
    return LocalObjectStore(root, _local_secret(settings, root), settings.public_base_url)
