"""The proxy's YAML config: loaded, resolved and checked once, at startup, into a frozen value.

The shape is LiteLLM's, so the seed's examples load unchanged::

    assistant_settings:               # where runs' model calls go (or: a remote Assistants server)
      custom_llm_provider: azure      # local (default) | openai | azure
      litellm_params: {api_key: os.environ/AZURE_API_KEY, api_base: ..., api_version: ...}
      code_interpreter:               # extension: off unless enabled (clients would run code here)
        enabled: true
        timeout: 30                   # seconds per execution; also memory_mb, cpu_seconds,
        directory: /var/lib/kit/code  # idle_seconds, max_output_chars, disk_mb, max_processes,
        sandbox: bwrap                # max_kernels; bwrap (default: required) | none (warned)
        network: false                # the sandbox has no network unless true

    model_list:                       # LiteLLM routes: model name → backend
      - model_name: llama
        litellm_params: {model: openai/llama3.2, api_base: http://localhost:11434/v1}
    general_settings:
      master_key: os.environ/MASTER_KEY
      database_url: postgresql://user:pw@db/kit     # default: the kit's default SQLite file
      max_request_size_mb: 16
      max_file_size_mb: 64            # extension: per uploaded file (POST /files)
      max_concurrent_uploads: 4       # extension: uploads taken at once; more wait (see server/app.py)
      record_prompts: true            # extension: keep each model request for the inspector
      prompt_record_max_bytes: 262144 # extension: the cap per recorded request (docs/inspection.md)
      api_keys:                       # extension: keys accepted besides the master key
        - os.environ/TEAM_A_KEY                      # owner derived from the key's hash
        - {key: os.environ/TEAM_B_KEY, user_id: team-b, key_alias: b}
    environment_variables: {NAME: value}             # as in LiteLLM: read by os.environ/NAME

Provider semantics are the SDK's (:func:`assistant_kit.providers.decide`): ``openai`` with an explicit
``api_base`` means a remote server that speaks the Assistants API itself, and the proxy
passes requests through to it; otherwise the kit's engine serves them and ``api_base`` is
where its Chat Completions calls go.

Decisions:

- ``os.environ/NAME`` anywhere means "the value of environment variable NAME" (or of
  ``environment_variables.NAME``). Unlike LiteLLM, an unset one is an error that names the
  variable and where it is used; it is never silently None.
- Unknown keys are reported, never silently dropped, in two grades. A key that LiteLLM knows
  and the kit does not use (``litellm_settings``, ``router_settings``, ``general_settings.alerting``,
  provider-specific ``litellm_params`` such as ``rpm``) is a *warning*, so an existing LiteLLM
  config starts. A key nobody knows is an *error* with a did-you-mean: a typo such as
  ``master_kye`` must not quietly turn authentication off.
- Secrets (``api_key``, ``master_key``, ``api_keys``) are ``repr=False`` fields, and no
  message here quotes a value, only key paths and variable names.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.settings import ProviderSettings
from ..providers import PROVIDERS, Destination, decide
from ..tools.code_interpreter import CodeInterpreterSettings
from .owners import owner_for

ENV_PREFIX = "os.environ/"
DEFAULT_MAX_REQUEST_SIZE_MB = 16.0

# Keys this module reads, per section.
_TOP = ("assistant_settings", "model_list", "general_settings", "environment_variables")
_ASSISTANT_SETTINGS = ("custom_llm_provider", "litellm_params", "code_interpreter")
_CODE_INTERPRETER = (
    "enabled",
    "directory",
    "timeout",
    "memory_mb",
    "cpu_seconds",
    "idle_seconds",
    "max_output_chars",
    "disk_mb",
    "max_processes",
    "max_kernels",
    "sandbox",
    "network",
)
_PROVIDER_PARAMS = ("api_key", "api_base", "api_version", "timeout", "max_retries")
_GENERAL = (
    "master_key",
    "database_url",
    "max_request_size_mb",
    "max_file_size_mb",
    "max_concurrent_uploads",
    "record_prompts",
    "prompt_record_max_bytes",
    "api_keys",
)
_ROUTE = ("model_name", "litellm_params", "model_info")
_ROUTE_PARAMS = ("model", "api_key", "api_base", "api_version", "custom_llm_provider")
_KEY_ENTRY = ("key", "user_id", "key_alias")

# Keys LiteLLM knows that the kit does not use: reported as warnings, not errors.
_LITELLM_TOP = (
    "litellm_settings",
    "router_settings",
    "callback_settings",
    "files_settings",
    "finetune_settings",
    "guardrails",
    "credential_list",
    "mcp_servers",
    "vector_store_registry",
    "search_tools",
    "include",
)
_LITELLM_GENERAL = (
    "alerting",
    "alerting_threshold",
    "alert_types",
    "alert_to_webhook_url",
    "allowed_routes",
    "admin_only_routes",
    "allow_requests_on_db_unavailable",
    "background_health_checks",
    "completion_model",
    "custom_auth",
    "custom_key_generate",
    "database_connection_pool_limit",
    "database_connection_timeout",
    "disable_adding_master_key_hash_to_db",
    "disable_master_key_return",
    "disable_reset_budget",
    "disable_retry_on_max_parallel_request_limit_error",
    "disable_spend_logs",
    "enable_jwt_auth",
    "enforce_user_param",
    "forward_client_headers_to_llm_api",
    "global_max_parallel_requests",
    "health_check_details",
    "health_check_interval",
    "infer_model_from_keys",
    "key_management_settings",
    "key_management_system",
    "litellm_jwtauth",
    "litellm_key_header_name",
    "max_parallel_requests",
    "max_response_size_mb",
    "maximum_spend_logs_retention_period",
    "pass_through_endpoints",
    "proxy_batch_write_at",
    "proxy_budget_rescheduler_max_time",
    "proxy_budget_rescheduler_min_time",
    "store_model_in_db",
    "store_prompts_in_spend_logs",
    "ui_access_mode",
    "user_header_name",
)


class ConfigError(Exception):
    """The config cannot be used; the message says where and why (and never a secret)."""


@dataclass(frozen=True)
class ConfigKey:
    """A key accepted besides the master key. ``owner`` is the identity its objects get."""

    key: str = field(repr=False)
    owner: str
    key_alias: str | None = None


@dataclass(frozen=True)
class Config:
    provider: str | None = None  # None (local engine) | "openai" | "azure"
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    api_version: str | None = None
    timeout: float | None = None
    max_retries: int = 2
    model_list: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    master_key: str | None = field(default=None, repr=False)
    database_url: str | None = None
    max_request_size_mb: float = DEFAULT_MAX_REQUEST_SIZE_MB
    max_file_size_mb: float | None = None  # None: the engine's default (ASSISTANT_KIT_MAX_FILE_MB or 64)
    max_concurrent_uploads: int | None = None  # None: server/app.py's default (4)
    record_prompts: bool | None = None  # None: the engine's default (ASSISTANT_KIT_RECORD_PROMPTS or on)
    prompt_record_max_bytes: int | None = None  # None: the engine's default (262144)
    code_interpreter: CodeInterpreterSettings = field(default_factory=CodeInterpreterSettings)
    api_keys: tuple[ConfigKey, ...] = field(default=(), repr=False)
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    warnings: tuple[str, ...] = ()
    source: str | None = None

    @property
    def destination(self) -> Destination:
        """Where requests go: the engine, or a remote Assistants server (provider openai +
        explicit api_base) with its key — :func:`assistant_kit.providers.decide`'s rule."""
        return decide(
            self.provider, api_key=self.api_key, api_base=self.api_base, api_version=self.api_version
        )

    @property
    def passthrough(self) -> bool:
        """Requests go to a remote Assistants server (see :attr:`destination`)."""
        return self.destination.remote is not None

    @property
    def auth_enabled(self) -> bool:
        return self.master_key is not None or bool(self.api_keys)

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_size_mb * 1024 * 1024)

    @property
    def model_names(self) -> list[str]:
        return [route["model_name"] for route in self.model_list]

    def provider_settings(self) -> ProviderSettings:
        """The engine's settings (credentials stay in memory; ``repr`` hides them)."""
        return ProviderSettings(
            provider=self.provider,
            api_key=self.api_key,
            api_base=self.api_base,
            api_version=self.api_version,
            timeout=self.timeout,
            model_list=self.model_list,
            max_retries=self.max_retries,
        )


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and check a YAML config file. Raises :class:`ConfigError`."""
    import yaml

    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {source}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{at}: {problem}") from None
    return parse_config(data, environ, source=source)


def parse_config(data: Any, environ: Mapping[str, str] | None = None, *, source: str | None = None) -> Config:
    """Check an already-parsed config (``None`` = empty). Raises :class:`ConfigError`."""
    return _Parser(os.environ if environ is None else environ, source).config(data)


class _Parser:
    def __init__(self, environ: Mapping[str, str], source: str | None):
        self.environ: dict[str, str] = dict(environ)
        self.source = source
        self.warnings: list[str] = []
        self.errors: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    def _keys(
        self,
        mapping: Mapping[str, Any],
        where: str,
        known: tuple[str, ...],
        litellm: tuple[str, ...] = (),
        *,
        warn_unknown: bool = False,
    ) -> None:
        for key in mapping:
            if key in known:
                continue
            path = f"{where}.{key}" if where else str(key)
            if key in litellm or warn_unknown:
                self.warnings.append(f"{path}: not used by assistant-kit, ignored")
                continue
            guess = difflib.get_close_matches(str(key), [*known, *litellm], n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            self.errors.append(f"{path}: unknown key{hint}")

    def _mapping(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.errors.append(f"{where}: expected a mapping, got {type(value).__name__}")
            return {}
        return value

    def _resolve(self, value: Any, where: str) -> Any:
        """``os.environ/NAME`` → the variable's value; a missing variable is an error."""
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name not in self.environ:
                self.errors.append(
                    f"{where}: environment variable {name} is not set (the config says {ENV_PREFIX}{name})"
                )
                return None
            return self.environ[name]
        return value

    def _string(self, mapping: Mapping[str, Any], key: str, where: str) -> str | None:
        value = self._resolve(mapping.get(key), f"{where}.{key}" if where else key)
        if value is None:
            return None
        if key == "api_version" and isinstance(value, (int, float, dt.date)) and not isinstance(value, bool):
            return value.isoformat() if isinstance(value, dt.date) else str(value)  # unquoted in YAML
        if not isinstance(value, str):
            self.errors.append(f"{where}.{key}: expected a string, got {type(value).__name__}")
            return None
        return value

    def _number(self, mapping: Mapping[str, Any], key: str, where: str, *, integer: bool = False) -> Any:
        """A positive number (an integer ≥ 0 when ``integer``); None when absent or wrong."""
        value = self._resolve(mapping.get(key), f"{where}.{key}")
        if value is None:
            return None
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if integer:
                if not number.is_integer():
                    raise ValueError
                number = int(number)
        except (TypeError, ValueError):
            self.errors.append(f"{where}.{key}: expected {'an integer' if integer else 'a number'}")
            return None
        if number < 0 or (number == 0 and not integer):
            self.errors.append(f"{where}.{key}: must be {'≥ 0' if integer else 'positive'}")
            return None
        return number

    # -- sections --------------------------------------------------------------------------

    def config(self, data: Any) -> Config:
        top = self._mapping(data, self.source or "config")
        self._keys(top, "", _TOP, _LITELLM_TOP)
        env = self._mapping(top.get("environment_variables"), "environment_variables")
        for name, value in env.items():
            if value is not None:
                self.environ[str(name)] = str(value)
        values: dict[str, Any] = {"environment": {str(k): str(v) for k, v in env.items() if v is not None}}
        values.update(self.assistant_settings(top.get("assistant_settings")))
        values["model_list"] = self.model_list(top.get("model_list"))
        values.update(self.general_settings(top.get("general_settings")))
        if self.errors:
            where = f" in {self.source}" if self.source else ""
            raise ConfigError(f"invalid config{where}:\n  " + "\n  ".join(self.errors))
        return Config(**values, warnings=tuple(self.warnings), source=self.source)

    def assistant_settings(self, value: Any) -> dict[str, Any]:
        where = "assistant_settings"
        section = self._mapping(value, where)
        self._keys(section, where, _ASSISTANT_SETTINGS)
        out: dict[str, Any] = {}
        provider = self._string(section, "custom_llm_provider", where)
        if provider is not None:
            provider = provider.lower()
            if provider not in PROVIDERS:
                self.errors.append(
                    f"{where}.custom_llm_provider: '{provider}' is not one of {', '.join(PROVIDERS)}"
                )
            out["provider"] = None if provider == "local" else provider
        where = f"{where}.litellm_params"
        params = self._mapping(section.get("litellm_params"), where)
        self._keys(params, where, _PROVIDER_PARAMS, warn_unknown=True)
        for key in ("api_key", "api_base", "api_version"):
            out[key] = self._string(params, key, where)
        if out["api_base"] is not None:
            out["api_base"] = out["api_base"].rstrip("/")
        timeout = self._number(params, "timeout", where)
        if timeout is not None:
            out["timeout"] = timeout
        retries = self._number(params, "max_retries", where, integer=True)
        if retries is not None:
            out["max_retries"] = retries
        out["code_interpreter"] = self.code_interpreter(section.get("code_interpreter"))
        return out

    def code_interpreter(self, value: Any) -> CodeInterpreterSettings:
        where = "assistant_settings.code_interpreter"
        section = self._mapping(value, where)
        self._keys(section, where, _CODE_INTERPRETER)
        enabled = self._flag(section, "enabled", where)
        network = self._flag(section, "network", where)
        sandbox = self._string(section, "sandbox", where) or "bwrap"
        if sandbox not in ("bwrap", "none"):
            self.errors.append(f"{where}.sandbox: '{sandbox}' is not one of bwrap, none")
        directory = self._string(section, "directory", where)
        limits: dict[str, Any] = {}
        for key in ("timeout", "idle_seconds"):
            number = self._number(section, key, where)
            if number is not None:
                limits[key] = number
        for key in (
            "memory_mb",
            "cpu_seconds",
            "max_output_chars",
            "disk_mb",
            "max_processes",
            "max_kernels",
        ):
            number = self._number(section, key, where, integer=True)
            if number is not None:
                limits[key] = number
        if enabled and sandbox == "bwrap":
            from ..tools.isolation import missing

            reason = missing()  # probed here, so a server that cannot sandbox code does not start
            if reason:
                self.errors.append(
                    f"{where}.enabled: {reason}. Or set {where}.sandbox: none to run code without a "
                    f"sandbox (only for clients you trust with this machine)"
                )
        elif enabled:
            self.warnings.append(
                f"{where}.sandbox: none: model-written code runs unsandboxed, as this server's user, "
                f"with its files, environment and network in reach"
            )
        settings = CodeInterpreterSettings(
            enabled=enabled,
            directory=Path(directory) if directory else None,
            sandbox=sandbox if enabled else "auto",  # off: nothing to say (and Config() compares equal)
            network=network,
            hidden=self._hidden() if enabled else (),
        )
        return settings.with_limits(**limits) if limits else settings

    def _flag(self, section: Mapping[str, Any], key: str, where: str) -> bool:
        value = self._resolve(section.get(key, False), f"{where}.{key}")
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"  # from an environment variable
        if not isinstance(value, bool):
            self.errors.append(f"{where}.{key}: expected true or false")
            return False
        return value

    def _hidden(self) -> tuple[Path, ...]:
        """The config file's directory: kept out of the code sandbox's view."""
        return (Path(self.source).resolve().parent,) if self.source else ()

    def model_list(self, value: Any) -> tuple[dict[str, Any], ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.errors.append(f"model_list: expected a list, got {type(value).__name__}")
            return ()
        routes = []
        names: set[str] = set()
        for index, item in enumerate(value):
            where = f"model_list[{index}]"
            entry = self._mapping(item, where)
            self._keys(entry, where, _ROUTE)
            name = entry.get("model_name")
            if not isinstance(name, str) or not name:
                self.errors.append(f"{where}.model_name: required (a string)")
                continue
            if name in names:
                # LiteLLM load-balances between same-named routes; the kit routes a name once.
                self.warnings.append(f"{where}: model_name '{name}' repeats; the first route is used")
            names.add(name)
            where = f"{where}.litellm_params"
            params = self._mapping(entry.get("litellm_params"), where)
            self._keys(params, where, _ROUTE_PARAMS, warn_unknown=True)
            resolved = {key: self._string(params, key, where) for key in _ROUTE_PARAMS if key in params}
            if not resolved.get("model"):
                self.errors.append(f"{where}.model: required (the backend model, e.g. openai/llama3.2)")
            routes.append({"model_name": name, "litellm_params": resolved})
        return tuple(routes)

    def general_settings(self, value: Any) -> dict[str, Any]:
        where = "general_settings"
        section = self._mapping(value, where)
        self._keys(section, where, _GENERAL, _LITELLM_GENERAL)
        out: dict[str, Any] = {}
        master = self._string(section, "master_key", where)
        if master is not None:
            if not master:
                self.errors.append(f"{where}.master_key: must not be empty")
            out["master_key"] = master
        out["database_url"] = self._string(section, "database_url", where)
        size = self._number(section, "max_request_size_mb", where)
        if size is not None:
            out["max_request_size_mb"] = size
        file_size = self._number(section, "max_file_size_mb", where)
        if file_size is not None:
            out["max_file_size_mb"] = file_size
        uploads = self._number(section, "max_concurrent_uploads", where, integer=True)
        if uploads == 0:
            self.errors.append(f"{where}.max_concurrent_uploads: must be ≥ 1")
        elif uploads is not None:
            out["max_concurrent_uploads"] = uploads
        if "record_prompts" in section:
            out["record_prompts"] = self._flag(section, "record_prompts", where)
        cap = self._number(section, "prompt_record_max_bytes", where, integer=True)
        if cap is not None and cap < 1024:
            self.errors.append(f"{where}.prompt_record_max_bytes: must be ≥ 1024")
        elif cap is not None:
            out["prompt_record_max_bytes"] = cap
        out["api_keys"] = self.api_keys(section.get("api_keys"), master)
        return out

    def api_keys(self, value: Any, master: str | None) -> tuple[ConfigKey, ...]:
        where = "general_settings.api_keys"
        if value is None:
            return ()
        if not isinstance(value, list):
            self.errors.append(f"{where}: expected a list")
            return ()
        keys: list[ConfigKey] = []
        for index, item in enumerate(value):
            here = f"{where}[{index}]"
            entry = {"key": item} if not isinstance(item, dict) else item
            self._keys(entry, here, _KEY_ENTRY)
            key = self._string(entry, "key", here)
            user_id = self._string(entry, "user_id", here)
            alias = self._string(entry, "key_alias", here)
            if not key:
                if "key" not in entry or entry.get("key") == "":
                    self.errors.append(f"{here}.key: required (a non-empty string)")
                continue
            if key == master or any(k.key == key for k in keys):
                self.errors.append(f"{here}: the same key is listed twice (or equals master_key)")
                continue
            try:
                owner = owner_for(key, user_id)
            except ValueError as exc:
                self.errors.append(f"{here}.user_id: {exc}")
                continue
            keys.append(ConfigKey(key=key, owner=owner, key_alias=alias))
        return tuple(keys)
