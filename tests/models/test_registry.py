"""Model names → backends (``assistant_kit.models.registry``): the built-in table, user
registrations over it, the resolution order and the credentials each route gets.

Registrations are process-wide, so each test here registers names of its own; what must hold
for the *first* lookup of a process (built-ins not yet imported) runs in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.errors import ModelConfigError
from assistant_kit.models.base import BaseChatModel
from assistant_kit.models.registry import (
    BUILTIN_PREFIXES,
    ProviderSettings,
    names_a_model,
    register_model,
    register_prefix,
    resolve_model,
)
from assistant_kit.models.scripted import FunctionModel

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
_fresh = itertools.count()


def fresh(stem: str) -> str:
    """A name no other test registered (registrations outlive a test)."""
    return f"{stem}{next(_fresh)}-{os.getpid()}"


def python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing registered, nothing imported); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Recorder:
    """A prefix factory that keeps what it was asked for: the rest of the name and the settings."""

    def __init__(self, label: str):
        self.label = label
        self.calls: list[tuple[str, ProviderSettings]] = []

    def __call__(self, rest: str, settings: ProviderSettings) -> BaseChatModel:
        self.calls.append((rest, settings))
        return FunctionModel(lambda *_: self.label, name=f"{self.label}:{rest}")


# --- the bug: a user prefix registered first must not hide the built-ins ------------------


def test_a_prefix_registered_before_the_first_lookup_keeps_the_built_ins() -> None:
    out = python(
        "from assistant_kit.models.registry import register_prefix, resolve_model\n"
        "from assistant_kit.models.scripted import FunctionModel\n"
        "register_prefix('ollama/', lambda rest, s: FunctionModel(lambda *_: rest, name='ollama/' + rest))\n"
        "print(type(resolve_model('test/echo')).__name__)\n"
        "print(resolve_model('ollama/llama3').name)\n"
        "from assistant_kit.models.registry import ProviderSettings\n"
        "print(type(resolve_model('openai/gpt-4o-mini', ProviderSettings(api_key='sk-x'))).__name__)\n"
    )
    assert out.split() == ["EchoModel", "ollama/llama3", "OpenAIChatModel"]


def test_an_unknown_prefix_lists_every_known_one() -> None:
    out = python(
        "from assistant_kit.errors import ModelConfigError\n"
        "from assistant_kit.models.registry import register_prefix, resolve_model\n"
        "register_prefix('ollama/', lambda rest, s: None)\n"
        "try:\n"
        "    resolve_model('nope/x')\n"
        "except ModelConfigError as exc:\n"
        "    print(exc.message, exc.param)\n"
    )
    assert "Unknown model 'nope/x'" in out
    assert "Known prefixes: azure/, local/, ollama/, openai/, test/;" in out
    assert out.split()[-1] == "model"


def test_the_registry_imports_a_backend_only_when_its_prefix_is_used() -> None:
    """``import assistant_kit`` stays cheap: the table names modules, it does not import them."""
    out = python(
        "import sys\n"
        "from assistant_kit.models.registry import names_a_model, resolve_model\n"
        "backends = ('scripted', 'openai_chat', 'local')\n"
        "print([b for b in backends if f'assistant_kit.models.{b}' in sys.modules])\n"
        "print(names_a_model('local/smollm2'), names_a_model('ollama/x'))\n"
        "resolve_model('test/echo')\n"
        "print([b for b in backends if f'assistant_kit.models.{b}' in sys.modules])\n"
    )
    assert out.splitlines() == ["[]", "True False", "['scripted']"]


def test_every_built_in_entry_names_a_factory() -> None:
    assert sorted(BUILTIN_PREFIXES) == ["azure/", "local/", "openai/", "test/"]
    for prefix, target in BUILTIN_PREFIXES.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), prefix


def test_importing_a_backend_registers_nothing() -> None:
    """The table is the one list: importing ``models.local`` (as its tests and benchmarks do)
    does not re-register ``local/`` over the user's own."""
    out = python(
        "from assistant_kit.models.registry import register_prefix, resolve_model\n"
        "from assistant_kit.models.scripted import FunctionModel\n"
        "register_prefix('local/', lambda rest, s: FunctionModel(lambda *_: rest, name='mine/' + rest))\n"
        "import assistant_kit.models.local\n"
        "print(resolve_model('local/smollm2').name)\n"
    )
    assert out.split() == ["mine/smollm2"]


# --- resolution order ---------------------------------------------------------------------


def test_a_model_list_route_comes_before_an_exact_name_and_a_prefix() -> None:
    prefix, name = fresh("rt") + "/", fresh("routed")
    by_prefix = Recorder("prefix")
    register_prefix(prefix, by_prefix)
    register_model(name, lambda *_: "exact")
    route = {"model_name": name, "litellm_params": {"model": prefix + "target"}}
    model = resolve_model(name, ProviderSettings(model_list=(route,)))
    assert model.name == "prefix:target" and by_prefix.calls[0][0] == "target"
    assert resolve_model(name).name == name  # without the route: the exact name


def test_an_exact_name_comes_before_a_prefix() -> None:
    prefix = fresh("ex") + "/"
    register_prefix(prefix, Recorder("prefix"))
    register_model(prefix + "special", lambda *_: "exact")
    assert resolve_model(prefix + "special").name == prefix + "special"
    assert resolve_model(prefix + "other").name == "prefix:other"


def test_the_longest_prefix_wins() -> None:
    short = fresh("lp") + "/"
    register_prefix(short, Recorder("short"))
    register_prefix(short + "deep/", Recorder("long"))
    assert resolve_model(short + "deep/m").name == "long:m"
    assert resolve_model(short + "m").name == "short:m"


def test_a_user_prefix_over_a_built_in_one_wins() -> None:
    """User registrations are layered over the built-in table; the table itself is untouched."""
    prefix = "test/" + fresh("mine") + "/"
    register_prefix(prefix, Recorder("mine"))
    assert resolve_model(prefix + "m").name == "mine:m"
    assert resolve_model("test/echo").name == "test/echo"


def test_a_plain_name_goes_to_the_settings_provider() -> None:
    openai_model = resolve_model("gpt-4o-mini", ProviderSettings(api_key="sk-test"))
    assert "via openai at api.openai.com" in repr(openai_model)
    azure = ProviderSettings(
        provider="azure", api_key="az", api_base="https://r.openai.azure.com", api_version="2024-06-01"
    )
    deployment = resolve_model("my-deployment", azure)
    assert deployment.name == "my-deployment" and "via azure at r.openai.azure.com" in repr(deployment)
    assert "az" not in repr(deployment).replace("azure", "")


def test_a_plain_name_that_is_empty_is_an_unknown_model() -> None:
    with pytest.raises(ModelConfigError, match="Unknown model ''") as info:
        resolve_model("")
    assert info.value.param == "model"


def test_names_a_model_knows_built_in_and_registered_names_without_importing() -> None:
    prefix, name = fresh("nm") + "/", fresh("named")
    assert names_a_model("test/echo") and names_a_model("azure/dep") and not names_a_model(prefix + "x")
    register_prefix(prefix, Recorder("nm"))
    register_model(name, lambda *_: "x")
    assert names_a_model(prefix + "x") and names_a_model(name) and not names_a_model("notes.db")


# --- credentials per route ----------------------------------------------------------------


def credentials(settings: ProviderSettings) -> tuple[Any, ...]:
    return settings.api_base, settings.api_key, settings.api_version


def routed_settings(params: dict[str, Any], settings: ProviderSettings) -> ProviderSettings:
    """The settings a route's target backend receives."""
    prefix = fresh("cr") + "/"
    recorder = Recorder("cr")
    register_prefix(prefix, recorder)
    route = {"model_name": "m", "litellm_params": {"model": prefix + "x", **params}}
    resolve_model("m", settings.replace(model_list=(route,)))
    return recorder.calls[-1][1]


PROVIDER = ProviderSettings(
    provider="azure", api_key="sk-provider", api_base="https://r.openai.azure.com", api_version="v1"
)


def test_a_route_to_a_host_of_its_own_never_gets_the_providers_key() -> None:
    got = routed_settings({"api_base": "http://ollama:11434/v1"}, PROVIDER)
    assert credentials(got) == ("http://ollama:11434/v1", None, None)
    got = routed_settings({"api_base": "http://ollama:11434/v1", "api_key": "sk-own"}, PROVIDER)
    assert credentials(got) == ("http://ollama:11434/v1", "sk-own", None)


def test_a_route_to_the_providers_host_uses_its_credentials_unless_it_names_its_own() -> None:
    host = "https://r.openai.azure.com"
    assert credentials(routed_settings({}, PROVIDER)) == (host, "sk-provider", "v1")
    same_host = {"api_base": host + "/", "api_key": "sk-route"}
    assert credentials(routed_settings(same_host, PROVIDER)) == (host, "sk-route", "v1")


def test_a_route_may_change_the_provider_and_drops_the_other_routes() -> None:
    got = routed_settings({"custom_llm_provider": "openai"}, PROVIDER)
    assert got.provider == "openai" and got.model_list == ()
    assert routed_settings({}, PROVIDER).provider == "azure"
