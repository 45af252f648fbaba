"""How the reference is configured: where the fakes are, the webhook secret, storage, defects."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field
from standardwebhooks import Webhook

from reference_middleware.defects import BUSINESS_CLOCK, Defect

SYSTEMS = ("erp", "wms", "carrier", "returns_portal")


class FakeEndpoint(BaseModel):
    url: str
    api_key: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


class BrokerSettings(BaseModel):
    """The message-broker channel (docs/CONTRACT.md, "Message broker"), from RH_BROKER_*."""

    url: str = Field(description="amqp://user:password@host:port/vhost (a secret: never logged)")
    exchange: str
    queue: str
    dead_letter_exchange: str
    dead_letter_queue: str
    routing_keys: tuple[str, ...]
    prefetch: int = Field(32, ge=1)


BROKER_ENV = {"url": "RH_BROKER_URL", "exchange": "RH_BROKER_EXCHANGE", "queue": "RH_BROKER_QUEUE",
              "dead_letter_exchange": "RH_BROKER_DEAD_LETTER_EXCHANGE", "dead_letter_queue": "RH_BROKER_DEAD_LETTER_QUEUE",
              "routing_keys": "RH_BROKER_ROUTING_KEYS"}


def _channel_env(env: dict[str, str], names: dict[str, str]) -> dict[str, str] | None:
    """A channel's variables by field, if its first one is set (then all must be), else None."""
    first = next(iter(names.values()))
    if not env.get(first):
        return None
    missing = [name for name in names.values() if not env.get(name)]
    if missing:
        raise ConfigError(f"{first} is set but {', '.join(missing)} missing: the harness writes them all to the fakes' env file")
    return {field: env[name] for field, name in names.items()}


def broker_from_env(env: dict[str, str]) -> BrokerSettings | None:
    """The broker channel if RH_BROKER_URL is set."""
    values = _channel_env(env, BROKER_ENV)
    if values is None:
        return None
    values["routing_keys"] = tuple(k.strip() for k in values["routing_keys"].split(",") if k.strip())
    return BrokerSettings(**values)


class BatchSettings(BaseModel):
    """The batch-file channel (docs/CONTRACT.md, "Batch files"), from RH_SFTP_* and RH_BATCH_*."""

    host: str
    port: int
    user: str
    password: str = Field(description="a secret: never logged")
    host_key: str = Field(description="the server's public key (OpenSSH format): the only one trusted")
    inbox: str
    archive: str
    rejected: str
    poll_s: float = Field(0.2, gt=0, description="How often the inbox is listed (wall seconds)")


BATCH_ENV = {"host": "RH_SFTP_HOST", "port": "RH_SFTP_PORT", "user": "RH_SFTP_USER", "password": "RH_SFTP_PASSWORD",
             "host_key": "RH_SFTP_HOST_KEY", "inbox": "RH_BATCH_INBOX", "archive": "RH_BATCH_ARCHIVE", "rejected": "RH_BATCH_REJECTED"}


def batch_from_env(env: dict[str, str]) -> BatchSettings | None:
    """The batch channel if RH_SFTP_HOST is set."""
    values = _channel_env(env, BATCH_ENV)
    return None if values is None else BatchSettings(**values)


class Settings(BaseModel):
    fakes: dict[str, FakeEndpoint]
    broker: BrokerSettings | None = Field(None, description="Events also consumed from a message broker")
    batch: BatchSettings | None = Field(None, description="Events also picked up as batch files over SFTP")
    webhook_secret: str = Field(description="Standard Webhooks secret shared with the sender (whsec_...)")
    database: str = Field("sqlite://:memory:", description="sqlite:///relative/path, sqlite:////absolute/path, sqlite://:memory: or postgresql://...")
    defects: frozenset[Defect] = frozenset()
    workers: int = Field(8, ge=1, description="Returns worked on at once")
    call_timeout_s: float = Field(10.0, gt=0)
    retry_base_s: float = Field(0.2, gt=0, description="First backoff; doubles per attempt, with jitter")
    # Short: a job's attempts add up over all its calls, and a return whose every call meets a
    # fault (chaos's sweep puts its first round on the first return) needs a dozen of them.
    retry_cap_s: float = Field(3.0, gt=0, description="Longest backoff between a job's attempts")
    max_attempts: int = Field(40, ge=1, description="Attempts of one job before it is dead-lettered")
    react_delay_s: float = Field(0.0, ge=0, le=3600, description="Wall seconds each event waits before it is worked on: a slower, still correct layer")
    clock_url: str | None = Field(None, description="The harness's business clock (RH_CLOCK_URL), read by the batch defects")
    slow_ms: int = Field(600, ge=0, description="Delay per step and per acknowledgement under the `slow` defect")
    rma_hold_h: float = Field(12.0, ge=0, description="Business hours an RMA waits under the `rma-batch` defect")
    refund_hold_h: float = Field(30.0, ge=0, description="Business hours a credit memo waits under the `nightly-refunds` defect")
    close_hold_h: float = Field(60.0, ge=0, description="Business hours closing waits under the `batch-closing` defect")
    seed: int = 0

    def has(self, defect: Defect) -> bool:
        return defect in self.defects

    @property
    def clock(self) -> str:
        """The clock this layer schedules by, and so the one the harness should judge it on."""
        return "business" if self.defects & BUSINESS_CLOCK else "wall"


class ConfigError(ValueError):
    pass


DATABASE_SCHEMES = ("sqlite://", "postgresql://", "postgres://")


def redacted(url: str) -> str:
    """A database URL fit for a log: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as `returns-harness fakes` writes them; comments and blanks skipped."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read the fakes' env file {path}: {e.strerror}") from None
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        env[key.strip()] = value.strip()
    return env


def fakes_from_env(env: dict[str, str]) -> dict[str, FakeEndpoint]:
    """The four fakes from RH_<SYSTEM>_URL and their credentials; a missing one is named."""
    fakes, missing = {}, []
    for system in SYSTEMS:
        prefix = f"RH_{system.upper()}"
        fields = {k: env.get(f"{prefix}_{k.upper()}") for k in ("url", "api_key", "token_url", "client_id", "client_secret")}
        if not fields["url"]:
            missing.append(f"{prefix}_URL")
            continue
        if not fields["api_key"] and not (fields["token_url"] and fields["client_id"] and fields["client_secret"]):
            missing.append(f"{prefix}_API_KEY (or _TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET)")
            continue
        fakes[system] = FakeEndpoint(**{k: v for k, v in fields.items() if v})
    if missing:
        raise ConfigError(f"the fakes' settings lack {', '.join(missing)}; run `returns-harness fakes` to write them")
    return fakes


def load_settings(fakes_env: Path | None, **options) -> Settings:
    """Settings from the fakes' env file (else the process environment) and options."""
    env = dict(os.environ)
    if fakes_env is not None:
        env.update(read_env_file(fakes_env))
    secret = options.pop("webhook_secret", None) or env.get("RH_WEBHOOK_SECRET")
    if not secret:
        raise ConfigError("no webhook secret: pass --webhook-secret or set RH_WEBHOOK_SECRET (the secret the sender signs with)")
    database = options.get("database")
    if database is not None and not database.startswith(DATABASE_SCHEMES):
        raise ConfigError(f"--database: expected sqlite:///FILE, sqlite://:memory: or postgresql://..., got {database!r}")
    if options.get("defects") and set(options["defects"]) & BUSINESS_CLOCK and not env.get("RH_CLOCK_URL"):
        raise ConfigError(f"the defects {', '.join(sorted(set(options['defects']) & BUSINESS_CLOCK))} schedule by the harness's "
                          "business clock: RH_CLOCK_URL is missing from the fakes' env file")
    try:
        Webhook(secret)
    except Exception as e:  # noqa: BLE001 (the library raises binascii errors and others on a bad key)
        raise ConfigError(f"the webhook secret is not a Standard Webhooks secret (whsec_ and base64): {e}") from None
    return Settings(fakes=fakes_from_env(env), webhook_secret=secret, clock_url=env.get("RH_CLOCK_URL"),
                    broker=broker_from_env(env), batch=batch_from_env(env), **options)
