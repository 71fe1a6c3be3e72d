"""Config loading: the seed's shapes, ``os.environ/NAME``, unknown keys, secrets kept out of
``repr`` and messages; and the CLI's behaviour on a bad config (a subprocess, exit 2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from assistant_kit.server.auth import owner_for
from assistant_kit.server.config import Config, ConfigError, load_config, parse_config

from .conftest import clean_env, command

SEED_AZURE = """
assistant_settings:
  custom_llm_provider: azure
  litellm_params:
    api_key: os.environ/AZURE_API_KEY
    api_base: os.environ/AZURE_API_BASE
    api_version: os.environ/AZURE_API_VERSION
"""
SEED_ASTRA = """
assistant_settings:
  custom_llm_provider: openai
  litellm_params:
    api_key: os.environ/ASTRA_API_KEY
    api_base: os.environ/ASTRA_API_BASE
"""
AZURE_ENV = {
    "AZURE_API_KEY": "az-secret",
    "AZURE_API_BASE": "https://r.example",
    "AZURE_API_VERSION": "2024-05-01",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_seed_azure_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_AZURE), AZURE_ENV)
    assert (config.provider, config.api_base, config.api_version) == (
        "azure",
        "https://r.example",
        "2024-05-01",
    )
    assert config.api_key == "az-secret" and not config.passthrough
    settings = config.provider_settings()
    assert settings.provider == "azure" and settings.api_key == "az-secret"
    assert "az-secret" not in repr(config) and "az-secret" not in repr(settings)
    assert not config.auth_enabled and config.warnings == ()


def test_seed_astra_config_is_passthrough(tmp_path: Path) -> None:
    env = {"ASTRA_API_KEY": "k", "ASTRA_API_BASE": "https://astra.example/v1/"}
    config = load_config(write(tmp_path, SEED_ASTRA), env)
    assert config.passthrough and config.api_base == "https://astra.example/v1"
    # openai without api_base is the engine with OpenAI chat models, as in the SDK
    assert not parse_config({"assistant_settings": {"custom_llm_provider": "openai"}}, {}).passthrough
    assert parse_config({"assistant_settings": {"custom_llm_provider": "local"}}, {}).provider is None


def test_unset_environment_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    env = dict(AZURE_ENV)
    del env["AZURE_API_BASE"]
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, SEED_AZURE), env)
    message = str(raised.value)
    assert "AZURE_API_BASE is not set" in message
    assert "assistant_settings.litellm_params.api_base" in message
    assert "az-secret" not in message


def test_environment_variables_section_feeds_references() -> None:
    config = parse_config(
        {
            "environment_variables": {"MASTER": "sk-from-section"},
            "general_settings": {"master_key": "os.environ/MASTER"},
        },
        {},
    )
    assert config.master_key == "sk-from-section" and config.environment == {"MASTER": "sk-from-section"}


def test_model_list_in_litellm_shape() -> None:
    config = parse_config(
        {
            "model_list": [
                {
                    "model_name": "llama",
                    "litellm_params": {
                        "model": "openai/llama3.2",
                        "api_base": "http://localhost:11434/v1",
                        "api_key": "os.environ/OLLAMA_KEY",
                        "rpm": 60,
                    },
                    "model_info": {"id": "x"},
                },
                {"model_name": "llama", "litellm_params": {"model": "openai/other"}},
            ]
        },
        {"OLLAMA_KEY": "ollama-secret"},
    )
    assert config.model_names == ["llama", "llama"]
    assert config.model_list[0]["litellm_params"] == {
        "model": "openai/llama3.2",
        "api_key": "ollama-secret",
        "api_base": "http://localhost:11434/v1",
    }
    assert "model_list[0].litellm_params.rpm: not used by assistant-kit, ignored" in config.warnings
    assert any("repeats" in w for w in config.warnings)
    assert "ollama-secret" not in repr(config)


@pytest.mark.parametrize(
    "data,fragment",
    [
        (
            {"general_settings": {"master_kye": "x"}},
            "general_settings.master_kye: unknown key (did you mean 'master_key'?)",
        ),
        ({"general_setting": {}}, "general_setting: unknown key (did you mean 'general_settings'?)"),
        ({"assistant_settings": {"provider": "azure"}}, "assistant_settings.provider: unknown key"),
        (
            {"assistant_settings": {"custom_llm_provider": "ollama"}},
            "'ollama' is not one of local, openai, azure",
        ),
        ({"model_list": [{"litellm_params": {"model": "x"}}]}, "model_list[0].model_name: required"),
        ({"model_list": [{"model_name": "a"}]}, "model_list[0].litellm_params.model: required"),
        ({"model_list": {"a": 1}}, "model_list: expected a list"),
        ({"general_settings": {"max_request_size_mb": -1}}, "max_request_size_mb: must be positive"),
        ({"general_settings": {"max_request_size_mb": "big"}}, "max_request_size_mb: expected a number"),
        (
            {"assistant_settings": {"litellm_params": {"max_retries": 1.5}}},
            "max_retries: expected an integer",
        ),
        ({"general_settings": {"api_keys": [{"user_id": "u"}]}}, "api_keys[0].key: required"),
        ({"general_settings": {"api_keys": ["sk-a", "sk-a"]}}, "the same key is listed twice"),
        ({"general_settings": {"master_key": ""}}, "master_key: must not be empty"),
        ({"general_settings": {"record_prompts": "sometimes"}}, "record_prompts: expected true or false"),
        ({"general_settings": {"prompt_record_max_bytes": 100}}, "prompt_record_max_bytes: must be ≥ 1024"),
        ("just a string", "expected a mapping"),
    ],
)
def test_invalid_configs(data: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, {})
    assert fragment in str(raised.value)


def test_litellm_only_keys_are_warnings() -> None:
    config = parse_config(
        {
            "litellm_settings": {"drop_params": True},
            "router_settings": {},
            "general_settings": {"master_key": "sk-m", "alerting": ["slack"]},
            "assistant_settings": {"litellm_params": {"organization": "org"}},
        },
        {},
    )
    assert set(config.warnings) == {
        "litellm_settings: not used by assistant-kit, ignored",
        "router_settings: not used by assistant-kit, ignored",
        "general_settings.alerting: not used by assistant-kit, ignored",
        "assistant_settings.litellm_params.organization: not used by assistant-kit, ignored",
    }


def test_general_settings_and_keys() -> None:
    config = parse_config(
        {
            "general_settings": {
                "master_key": "sk-m",
                "database_url": "postgresql://u:p@db/kit",
                "max_request_size_mb": 2,
                "api_keys": ["sk-a", {"key": "sk-b", "user_id": "bob", "key_alias": "b"}],
            }
        },
        {},
    )
    assert config.auth_enabled and config.max_request_bytes == 2 * 1024 * 1024
    assert config.database_url == "postgresql://u:p@db/kit"
    assert [k.owner for k in config.api_keys] == [owner_for("sk-a"), "user:bob"]
    assert "sk-a" not in repr(config) and "sk-m" not in repr(config)
    assert Config().max_request_size_mb == 16
    # The inspector's prompt records: the engine's default (on) unless the config says.
    assert (config.record_prompts, config.prompt_record_max_bytes) == (None, None)
    recording = {"record_prompts": False, "prompt_record_max_bytes": 4096}
    config = parse_config({"general_settings": recording}, {})
    assert (config.record_prompts, config.prompt_record_max_bytes) == (False, 4096)


def test_unquoted_api_version(tmp_path: Path) -> None:
    text = "assistant_settings:\n  litellm_params:\n    api_version: 2024-02-01\n"
    assert load_config(write(tmp_path, text), {}).api_version == "2024-02-01"


def test_yaml_errors_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"line 2"):
        load_config(write(tmp_path, "a: 1\n b: [\n"))
    assert load_config(write(tmp_path, "")) == Config(source=str(tmp_path / "config.yaml"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, timeout=60, env=clean_env(**(env or {}))
    )


def test_cli_stops_on_unset_variable(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_AZURE)
    result = run_cli("serve", "--config", str(path), "--port", "0", env={"AZURE_API_KEY": "az-secret"})
    assert result.returncode == 2
    assert "AZURE_API_BASE is not set" in result.stderr and "AZURE_API_VERSION is not set" in result.stderr
    assert "az-secret" not in result.stderr + result.stdout
    assert "listening" not in result.stdout


def test_cli_reports_unknown_keys(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump({"general_settings": {"master_kye": "sk-typo-secret"}}))
    result = run_cli("--config", str(path), "--port", "0")
    assert result.returncode == 2
    assert "did you mean 'master_key'?" in result.stderr
    assert "sk-typo-secret" not in result.stderr


def test_cli_cannot_open_store_hides_password(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        yaml.safe_dump({"general_settings": {"database_url": "postgresql://kit:hunter2@127.0.0.1:1/kit"}}),
    )
    result = run_cli("serve", "--config", str(path), "--port", "0")
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_code_interpreter_is_off_unless_enabled() -> None:
    assert not Config().code_interpreter.enabled
    assert not parse_config(
        {"assistant_settings": {"custom_llm_provider": "openai"}}, {}
    ).code_interpreter.enabled
    config = parse_config(
        {
            "assistant_settings": {
                "code_interpreter": {
                    "enabled": "os.environ/RUN_CODE",
                    "directory": "/srv/kit/code",
                    "timeout": 12.5,
                    "memory_mb": 700,
                    "cpu_seconds": 90,
                }
            },
            "general_settings": {"max_file_size_mb": 8},
        },
        {"RUN_CODE": "true"},
    )
    code = config.code_interpreter
    assert code.enabled and str(code.directory) == "/srv/kit/code" and not code.announce
    assert (code.limits.timeout, code.limits.memory_mb, code.limits.cpu_seconds) == (12.5, 700, 90)
    assert config.max_file_size_mb == 8


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"enabled": "yes"}, "code_interpreter.enabled: expected true or false"),
        ({"enabeld": True}, "code_interpreter.enabeld: unknown key (did you mean 'enabled'?)"),
        ({"memory_mb": 1.5}, "code_interpreter.memory_mb: expected an integer"),
        ({"timeout": -3}, "code_interpreter.timeout: must be positive"),
    ],
)
def test_bad_code_interpreter_sections(section: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"assistant_settings": {"code_interpreter": section}}, {})
    assert fragment in str(err.value)
