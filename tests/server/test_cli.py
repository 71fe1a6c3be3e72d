"""The ``assistant-kit`` command: both invocation forms, the startup banner, ``--help``."""

from __future__ import annotations

import subprocess
import sys

from tests.fake_upstream import FakeUpstream

from .conftest import MASTER_KEY, StartProxy, clean_env, command, fake_route, master_config


def test_seed_form_and_banner(start_proxy: StartProxy, fake_upstream: FakeUpstream) -> None:
    config = master_config(api_keys=["sk-listed-key"])
    config["model_list"] = [fake_route(fake_upstream, "gpt-4o"), fake_route(fake_upstream, "llama")]
    config["assistant_settings"] = {"custom_llm_provider": "azure", "litellm_params": {"api_key": "sk-az"}}
    proxy = start_proxy(config, subcommand=False)
    output = proxy.output()
    assert f"assistant-kit listening on {proxy.url} (routes at / and /v1" in output
    assert "store: sqlite:///" in output and str(proxy.config_path.parent) in output
    assert "mode: engine; plain model names go to provider 'azure'" in output
    assert "models: gpt-4o, llama;" in output
    assert "auth: master key, 1 config key(s), generated keys" in output
    for secret in (MASTER_KEY, "sk-listed-key", "sk-az", "sk-upstream"):
        assert secret not in output
    with proxy.http() as http:
        assert http.get("/health").json() == {"status": "healthy", "store": "ok", "mode": "engine"}


def test_options_after_the_subcommand_win(start_proxy: StartProxy) -> None:
    proxy = start_proxy(master_config(), "--no-access-log")
    with proxy.http() as http:
        assert http.get("/v1/assistants").status_code == 200
    assert proxy.stop() == 0
    assert "GET /v1/assistants" not in proxy.output()


def test_help() -> None:
    result = subprocess.run(
        [*command(), "--help"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert result.returncode == 0
    assert "--config" in result.stdout and "serve" in result.stdout
    result = subprocess.run(
        [*command(), "serve", "--help"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert result.returncode == 0 and "--port" in result.stdout and "4000" in result.stdout


def test_import_assistant_kit_does_not_load_the_server() -> None:
    code = (
        "import sys, assistant_kit; print(sorted(m for m in sys.modules"
        " if m.startswith('assistant_kit.server') or m in ('uvicorn', 'yaml')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert result.stdout.strip() == "[]"


def test_the_default_address_is_this_machine_only(start_proxy: StartProxy) -> None:
    from assistant_kit.server.cli import DEFAULT_HOST, _parser

    assert _parser().parse_args([]).host == DEFAULT_HOST == "127.0.0.1"
    assert _parser().parse_args(["serve"]).host == "127.0.0.1"
    proxy = start_proxy(master_config())  # the launcher passes --host 127.0.0.1 explicitly
    assert "to share it on your network: --host 0.0.0.0" in proxy.output()
