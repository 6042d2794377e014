"""Configuration from ``GTV_*`` environment variables (and an optional ``.env`` file).

Every variable is documented in the README's configuration table. ``load_settings`` turns a
validation failure into one :class:`ConfigError` line naming the variable, its value (secrets
masked) and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "GTV_"
_SECRET_FIELDS = frozenset(
    {"jwt_secret", "s3_secret_key", "bootstrap_password", "mediamtx_jwt_key", "audit_key"}
)
_URL_FIELDS = frozenset(
    {"database_url", "database_read_url", "redis_url", "amqp_url", "mediamtx_api"}
)


# settings holding URLs (or host:port): no blanks or control characters in any of them
_HTTP_URLS = ("public_base_url", "mediamtx_api", "mediamtx_public_url", "mediamtx_hls_url")
_URLISH = (
    "database_url", "database_read_url", "redis_url", "amqp_url", "s3_endpoint", "rtsp_urls",
    "webrtc_ice_servers", *_HTTP_URLS,
)  # fmt: skip
_HTTP = (frozenset({"http", "https"}), "an http:// or https:// URL")
_POSTGRES = (frozenset({"postgresql", "postgres"}), "a postgresql:// URL")
# URL settings and the schemes they accept (when set), with what the error says is expected
_SCHEMES: dict[str, tuple[frozenset[str], str]] = {
    **dict.fromkeys(_HTTP_URLS, _HTTP),
    "database_url": _POSTGRES,
    "database_read_url": _POSTGRES,
    "redis_url": (frozenset({"redis", "rediss", "unix"}), "a redis:// URL"),
    "amqp_url": (
        frozenset({"amqp", "amqps"}),
        "an amqp:// URL (or several, comma-separated, for a cluster)",
    ),
}
_URL_LISTS = frozenset({"amqp_url"})  # comma-separated URLs, each checked


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gtvision"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gtvision"


CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ConfigError(Exception):
    """Invalid configuration: one line, no traceback, secrets masked."""


def mask_url(url: str) -> str:
    """Replace the password of a URL with ``***`` (``amqp://u:***@h/``)."""
    if not url:
        return url
    if url.count("://") > 1:  # several node URLs (a RabbitMQ cluster)
        return ",".join(mask_url(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]  # host:port, or a list of them (Redis Cluster seeds)
    netloc = f"{parts.username}:***@{host}" if parts.username else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Settings(BaseSettings):
    """All gtvision settings. Field ``foo_bar`` is read from ``GTV_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # storage and services; empty means "embedded / not configured"
    data_dir: Path = Field(default_factory=_default_data_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    database_url: str = ""
    database_read_url: str = ""
    db_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str = ""
    redis_prefix: str = "gtv:"
    redis_cluster: bool = False
    amqp_url: str = ""
    amqp_exchange: str = "gtvision.events"
    amqp_queues: CsvList = Field(default_factory=list)
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "gtvision"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    rtsp_urls: CsvList = Field(default_factory=list)

    # web
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    jwt_secret: SecretStr = SecretStr("")
    audit_key: SecretStr = SecretStr("")
    jwt_ttl_s: int = Field(default=900, ge=30)
    refresh_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    camera_allow_cidrs: CsvList = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    )
    bootstrap_password: SecretStr = SecretStr("")
    stream_token_ttl_s: int = Field(default=60, ge=5, le=3600)
    presign_ttl_s: int = Field(default=300, ge=10, le=86400)
    rate_limit_per_min: int = Field(default=600, ge=0)
    login_rate_limit_per_min: int = Field(default=10, ge=0)
    login_ip_rate_limit_per_min: int = Field(default=30, ge=0)
    login_user_failures_per_hour: int = Field(default=100, ge=0)
    trusted_proxies: CsvList = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    sse_ping_s: float = Field(default=15.0, gt=0)
    web_workers: int = Field(default=1, ge=1, le=64)
    public_base_url: str = ""
    webrtc_max_peers: int = Field(default=16, ge=1, le=1000)
    webrtc_ice_servers: CsvList = Field(default_factory=list)
    webrtc_linger_s: float = Field(default=15.0, ge=0, le=3600)
    mediamtx_api: str = ""
    mediamtx_public_url: str = ""
    mediamtx_hls_url: str = ""
    mediamtx_token_ttl_s: int = Field(default=120, ge=10, le=3600)
    mediamtx_jwt_key: SecretStr = SecretStr("")
    mediamtx_sync_s: float = Field(default=60.0, gt=0)
    export_max_s: int = Field(default=3600, ge=1, le=86400)
    export_max_bytes: int = Field(default=2_000_000_000, ge=1_000_000)

    # flows
    recovery_dir: Path | None = None
    snapshot_interval_s: float = Field(default=10.0, gt=0)
    clip_pre_roll_s: float = Field(default=5.0, ge=0, le=120)
    clip_post_roll_s: float = Field(default=5.0, ge=0, le=120)
    record_segment_s: float = Field(default=0.0, ge=0, le=3600)
    record_spool_dir: Path | None = None
    redis_stream_maxlen: int = Field(default=100_000, ge=100)
    redis_max_connections: int = Field(default=100, ge=4, le=100_000)
    relay_batch: int = Field(default=200, ge=1, le=10_000)
    relay_poll_s: float = Field(default=0.5, gt=0)
    analysis_fps: float = Field(default=5.0, gt=0)
    reconnect_cap_s: float = Field(default=30.0, gt=0)
    lpr_pass_gap_s: float = Field(default=1.5, gt=0)
    hotlist_refresh_s: float = Field(default=10.0, gt=0)
    timezone: str = "America/Sao_Paulo"
    retention_days: int = Field(default=30, ge=1, le=3650)
    audit_retention_days: int = Field(default=730, ge=1, le=36500)
    model_dir: Path | None = None
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int = Field(default=0, ge=0, le=256)
    plate_formats: str = "br-old=LLL9999,br-mercosul=LLL9L99"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # operations
    log_format: Literal["text", "json"] = "text"
    log_file: Path | None = None
    metrics_port: int = Field(default=0, ge=0, le=65535)

    @field_validator(
        "rtsp_urls",
        "camera_allow_cidrs",
        "webrtc_ice_servers",
        "trusted_proxies",
        "amqp_queues",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator(*_URLISH)
    @classmethod
    def _url_text(cls, value: object) -> object:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and any(c.isspace() or not c.isprintable() for c in text):
                msg = "a URL must not contain blanks or control characters"
                raise ValueError(msg)
        return value

    @field_validator(*_SCHEMES)
    @classmethod
    def _scheme(cls, value: str, info: ValidationInfo) -> str:
        name = info.field_name or ""
        schemes, expected = _SCHEMES[name]
        urls = [p.strip() for p in value.split(",")] if name in _URL_LISTS else [value]
        if any(url and urlsplit(url).scheme not in schemes for url in urls):
            msg = f"expected {expected}"
            raise ValueError(msg)
        return value

    @field_validator("rtsp_urls")
    @classmethod
    def _rtsp_urls(cls, value: list[str]) -> list[str]:
        from gtvision.sources.streamurl import UnsafeUrl, normalise

        try:
            return [normalise(url) for url in value]
        except UnsafeUrl as err:
            raise ValueError(str(err)) from None

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        from gtvision.redis_keys import check_prefix

        return check_prefix(value)

    @field_validator("amqp_queues")
    @classmethod
    def _amqp_queues(cls, value: list[str]) -> list[str]:
        from gtvision.sinks.amqp import parse_queues

        parse_queues(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = "expected an IANA time zone like America/Sao_Paulo"
            raise ValueError(msg) from None
        return value

    @field_validator("camera_allow_cidrs", "trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                msg = f"expected CIDR networks like 10.0.0.0/8, got {cidr!r}"
                raise ValueError(msg) from None
        return value

    @property
    def models_path(self) -> Path:
        """Directory of cached model weights."""
        return self.model_dir or self.cache_dir / "models"

    def display(self) -> dict[str, str]:
        """Every setting as ``GTV_NAME -> text``, secrets and URL passwords masked."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                text = "***" if value.get_secret_value() else ""
            elif name in _URL_FIELDS:
                text = mask_url(str(value))
            elif isinstance(value, list):
                text = ",".join(str(v) for v in value)
            else:
                text = "" if value is None else str(value)
            out[ENV_PREFIX + name.upper()] = text
        return out


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = first.get("loc") or ("?",)
    name = str(loc[0])
    var = ENV_PREFIX + name.upper()
    raw = os.environ.get(var)
    if raw is None:
        shown = repr(first.get("input"))
    elif name in _SECRET_FIELDS:
        shown = "'***'"
    elif name in _URL_FIELDS:
        shown = repr(mask_url(raw))
    else:
        shown = repr(raw)
    reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"invalid configuration: {var}={shown}: {reason}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise :class:`ConfigError` with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
