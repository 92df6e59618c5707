"""Runtime settings of the engine: where the switch is, where the API listens, who may call it.

Read from a YAML file (``config/engine.example.yaml`` documents every key) validated with
pydantic, so a typo is refused with its location instead of silently defaulting. Secrets never
live in the file: the AMI secret comes from ``SAS_AMI_SECRET``, the broker password from
``SAS_MQTT_PASSWORD`` and API tokens from
``SAS_API_TOKENS`` (``token:client:role[:desk/desk...],...``) or a tokens file outside the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from sas_router.engine.api import ROLES, Client
from sas_router.engine.mqtt import MqttConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmiSettings(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5038
    username: str = "sas-router"
    secret: SecretStr = SecretStr("")
    action_timeout: Annotated[float, Field(gt=0, le=60)] = 5.0


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class MqttSettings(_Strict):
    """The broker shared with partner SAS (load messages) and supervision."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = "sas"
    username: str | None = None
    password: SecretStr | None = None
    publish_every: Annotated[float, Field(gt=0, le=60)] = 5.0
    partner_stale_after: Annotated[float, Field(gt=0, le=600)] = 15.0

    def config(self) -> MqttConfig | None:
        if not self.enabled:
            return None
        return MqttConfig(host=self.host, port=self.port, prefix=self.prefix, username=self.username,
                          password=self.password.get_secret_value() if self.password else None,
                          publish_every=self.publish_every)


class JournalSettings(_Strict):
    """The durable call journal: SQLite (WAL) embedded by default, PostgreSQL in production."""

    database: str = "sqlite:///var/journal.sqlite3"
    max_buffer: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000

    def url(self) -> str:
        return with_journal_password(self.database)


def with_journal_password(url: str) -> str:
    """The database URL with its PostgreSQL password from SAS_JOURNAL_PASSWORD (never written in a
    settings file or typed on a command line, where ``ps`` and shell history would keep it)."""
    password = os.environ.get("SAS_JOURNAL_PASSWORD")
    if password and url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is None:
            return parsed.set(password=password).render_as_string(hide_password=False)
    return url


#: A bearer token: 16 to 256 visible ASCII characters (no space, nothing a header could fold).
TOKEN_PATTERN = re.compile(r"^[\x21-\x7e]{16,256}$")


class TokenEntry(_Strict):
    token: SecretStr
    client: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
    role: Literal["viewer", "desk", "supervisor", "admin"]
    #: The desk phones this token may act for: extensions or ranges the plan declares (1001,
    #: 1001-1004), or a remote regulator's number (reached as Local/<number>@sas-remote-agent/n).
    desks: list[Annotated[str, Field(pattern=r"^(\+?[0-9]{2,20}|[0-9]{2,8}-[0-9]{2,8})$")]] = []

    @field_validator("token")
    @classmethod
    def _strong(cls, token: SecretStr) -> SecretStr:
        if not TOKEN_PATTERN.match(token.get_secret_value()):
            raise ValueError("a token is 16 to 256 visible ASCII characters, without spaces")
        return token

    @model_validator(mode="after")
    def _desk_is_bound(self) -> TokenEntry:
        if self.role == "desk" and not self.desks:
            raise ValueError(f"desk token of {self.client} names no desk: give it desks: [<extension>, ...]")
        return self


class Settings(_Strict):
    ami: AmiSettings = AmiSettings()
    http: HttpSettings = HttpSettings()
    mqtt: MqttSettings = MqttSettings()
    journal: JournalSettings = JournalSettings()
    #: Whether this engine applies the plan's switch-over presets (exactly one engine per site).
    apply_presets: bool = True
    tokens_file: Path | None = None
    confirm_transfer_within: Annotated[float, Field(gt=0, le=60)] = 5.0
    #: Asterisk's configuration directory when the engine runs on the Asterisk host: a plan reload
    #: (SIGHUP or the admin route) then installs the rendered files there and reloads the dialplan,
    #: the queues and PJSIP. Unset: a reload only changes the engine, the admin installs by hand.
    switch_config: Path | None = None
    #: Asterisk's monitor spool directory (astspooldir/monitor) as this host sees it: where the
    #: recorder's files are checked, indexed and served. On another host, a read-only mount of it.
    recordings_path: Path | None = Path("/var/spool/asterisk/monitor")
    log_format: Literal["auto", "json", "console"] = "auto"

    def api_clients(self) -> dict[str, Client]:
        """Every API client, by token; refuses (SettingsError, never a secret in the message) an
        empty, short or repeated token, a client named twice, or a desk token bound to no desk."""
        entries: list[tuple[str, dict[str, Any]]] = []
        if self.tokens_file is not None:
            data = YAML(typ="safe").load(self.tokens_file.read_text(encoding="utf-8")) or []
            entries += [(f"{self.tokens_file} entry {n}", item) for n, item in enumerate(data, 1)]
        listed = os.environ.get("SAS_API_TOKENS", "").strip()
        for n, listed_entry in enumerate(listed.split(",") if listed else [], 1):
            if not listed_entry.strip():
                raise SettingsError(f"SAS_API_TOKENS entry {n} is empty (a stray comma?)")
            secret, _, rest = listed_entry.partition(":")
            client, _, rest = rest.partition(":")
            role, _, desks = rest.partition(":")
            entries.append((f"SAS_API_TOKENS entry {n} ({client or '?'})",
                            {"token": secret, "client": client, "role": role,
                             "desks": [d for d in desks.split("/") if d]}))
        clients: dict[str, Client] = {}
        names: set[str] = set()
        for where, item in entries:
            try:
                entry = TokenEntry.model_validate(item)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
                raise SettingsError(f"{where}: {problems}") from None
            token = entry.token.get_secret_value()
            if token in clients:
                raise SettingsError(f"{where}: this token is already given to {clients[token].name}")
            if entry.client in names:
                raise SettingsError(f"{where}: client {entry.client} has two tokens; give each person one")
            names.add(entry.client)
            clients[token] = Client(entry.client, entry.role, tuple(entry.desks))
        assert all(c.role in ROLES for c in clients.values())
        return clients


class SettingsError(ValueError):
    pass


def load_settings(path: Path | None) -> Settings:
    data: dict[str, Any] = {}
    if path is not None:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"{path}: {problems}") from None
    secret = os.environ.get("SAS_AMI_SECRET")
    if secret:
        settings.ami.secret = SecretStr(secret)
    mqtt_password = os.environ.get("SAS_MQTT_PASSWORD")
    if mqtt_password:
        settings.mqtt.password = SecretStr(mqtt_password)
    return settings
