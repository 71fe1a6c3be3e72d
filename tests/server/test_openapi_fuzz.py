"""Fuzzing the proxy's own OpenAPI document with schemathesis, over real HTTP against
``assistant-kit serve``: whatever the generated request, never a 5xx (the SDK would retry it,
and it would mean an unhandled case)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.fake_upstream import get_fake_upstream

from .conftest import MASTER_KEY, Launcher, Proxy, master_config
from .test_openapi import document

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


@pytest.fixture(scope="module")
def fuzz_proxy(module_launcher: Launcher) -> Proxy:
    config = master_config()
    # Any model name a fuzzer invents goes to the loopback fake upstream, never to a network.
    config["assistant_settings"] = {"litellm_params": {"api_base": get_fake_upstream().url, "max_retries": 0}}
    return module_launcher.start(config, "--no-access-log")


def test_openapi_served_over_http(fuzz_proxy: Proxy) -> None:
    response = httpx2.get(f"{fuzz_proxy.url}/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == document()


# Loaded from the shipped document at collection (what /openapi.json serves, checked above);
# schemathesis.pytest.from_fixture cannot be used: it breaks on pytest 9 (request.node._nodeid).
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@hypothesis.settings(
    max_examples=50, deadline=None, suppress_health_check=list(hypothesis.HealthCheck), derandomize=True
)
def test_fuzz_no_server_errors(case: Any, fuzz_proxy: Proxy) -> None:
    from schemathesis.checks import not_a_server_error

    base = (
        fuzz_proxy.url
        if case.path in ("/health", "/key/generate", "/key/delete", "/key/info")
        else fuzz_proxy.v1
    )
    response = case.call(base_url=base, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
