"""The provider rule (``assistant_kit.providers.decide``): what ``custom_llm_provider``,
``api_base``, ``api_key`` and ``base_url`` mean — the engine, or a remote Assistants server —
and that every entry point (``local_client``, the SDK functions, ``Session``, the proxy's
config) asks it rather than deciding again."""

from __future__ import annotations

import pytest

from assistant_kit.client import provider_settings
from assistant_kit.errors import InvalidRequestError, SessionError
from assistant_kit.models.settings import ProviderSettings
from assistant_kit.notebook.session import Session
from assistant_kit.providers import PROVIDERS, Destination, decide
from assistant_kit.sdk import get_assistants
from assistant_kit.server.config import parse_config

BASE = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.mark.parametrize("given", [None, "local", "LOCAL", "Local"])
def test_no_provider_or_local_is_the_engine_with_the_default_provider(given: str | None) -> None:
    assert decide(given) == Destination(remote=None, provider=None)


@pytest.mark.parametrize(
    ("given", "provider"), [("openai", "openai"), ("OpenAI", "openai"), ("Azure", "azure")]
)
def test_a_named_provider_is_the_engines_model_provider(given: str, provider: str) -> None:
    where = decide(given, api_key="sk-model", api_version="2024-06-01")
    assert where.remote is None and where.provider == provider
    assert (where.api_key, where.api_version) == ("sk-model", "2024-06-01")


@pytest.mark.parametrize("given", ["anthropic", "", 5])
def test_an_unknown_provider_is_an_error_naming_the_parameter_and_the_choices(given: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decide(given)  # type: ignore[arg-type]
    assert info.value.param == "custom_llm_provider"
    assert info.value.message == (
        f"Unknown custom_llm_provider '{given}'. Choices: local, openai, azure (or None)."
    )
    assert PROVIDERS == ("local", "openai", "azure")


def test_api_base_alone_is_where_the_engines_model_calls_go() -> None:
    for given in (None, "local", "azure"):
        where = decide(given, api_key="sk-model", api_base=BASE)
        assert where.remote is None and where.api_base == BASE and where.api_key == "sk-model"


def test_openai_with_an_explicit_api_base_is_a_remote_assistants_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = decide("openai", api_key="sk-remote", api_base=BASE, api_version="v")
    assert where == Destination(remote=BASE, provider=None, api_key="sk-remote")
    assert decide("openai", api_base=BASE).api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert decide("OpenAI", api_base=BASE).api_key == "sk-env"  # read when deciding
    assert decide(None, api_base=BASE).api_key is None  # the engine's backends read the env themselves


def test_the_engine_by_definition_keeps_openai_with_api_base_as_a_model_server() -> None:
    where = decide("openai", api_key="sk-model", api_base=BASE, engine=True)
    assert where == Destination(remote=None, provider="openai", api_key="sk-model", api_base=BASE)


def test_base_url_names_a_remote_server_outright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    for given in (None, "azure", "openai"):
        where = decide(given, api_base="http://elsewhere/v1", base_url=BASE)
        assert where.remote == BASE and where.api_key == "sk-env"
    with pytest.raises(InvalidRequestError):
        decide("bedrock", base_url=BASE)  # still checked


def test_the_key_is_never_in_the_repr() -> None:
    where = decide("openai", api_key="sk-secret-123", api_base=BASE)
    assert "sk-secret" not in repr(where) and "sk-secret" not in repr(where.settings())


def test_settings_carry_the_engine_destination_and_the_call_limits() -> None:
    route = {"model_name": "m", "litellm_params": {"model": "test/echo"}}
    settings = decide("azure", api_key="k", api_base=BASE, api_version="v").settings(
        model_list=[route], timeout=3.0, max_retries=0
    )
    assert settings == ProviderSettings(
        provider="azure",
        api_key="k",
        api_base=BASE,
        api_version="v",
        timeout=3.0,
        model_list=(route,),
        max_retries=0,
    )


# --- every entry point asks decide() ------------------------------------------------------


def test_local_client_settings_follow_the_rule() -> None:
    assert provider_settings(custom_llm_provider="Azure").provider == "azure"
    assert provider_settings(custom_llm_provider="local").provider is None
    engine = provider_settings(custom_llm_provider="openai", api_base=BASE, api_key="k")
    assert (engine.provider, engine.api_base, engine.api_key) == ("openai", BASE, "k")
    with pytest.raises(InvalidRequestError, match="custom_llm_provider"):
        provider_settings(custom_llm_provider="bedrock")


def test_sdk_functions_and_session_reject_the_same_providers() -> None:
    with pytest.raises(InvalidRequestError) as sdk:
        get_assistants(custom_llm_provider="Bedrock")
    with pytest.raises(SessionError) as session:
        Session(custom_llm_provider="Bedrock")
    assert sdk.value.message == session.value.message and sdk.value.param == session.value.param


def test_the_proxy_config_passes_through_exactly_when_the_rule_says_remote() -> None:
    cases = [(None, None), ("openai", None), ("azure", BASE), ("local", BASE), ("openai", BASE)]
    for provider, base in cases:
        params = {"api_base": base} if base else {}
        settings = {"custom_llm_provider": provider, "litellm_params": params} if provider else {}
        config = parse_config({"assistant_settings": settings}, {})
        remote = decide(provider, api_base=base).remote
        assert config.passthrough is (remote is not None), (provider, base)
        assert config.destination.remote == remote
