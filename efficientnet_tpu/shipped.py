"""Where the shipped recipes and study specs are, in a checkout and in an installed wheel.

The YAML files live in the repository's top-level ``configs/`` folder. The
wheel carries the same folder as ``efficientnet_tpu/configs/`` (setup.py maps
that package onto ``configs/``), so a ``pip install`` from git or from a wheel
finds them without a checkout. An editable install or ``PYTHONPATH=checkout``
reads the checkout's ``configs/`` directly.

A recipe is named three ways: a path that exists (used as given), a bare name
(``imagenet`` or ``imagenet.yaml``: the shipped ``configs/imagenet.yaml``), or
a checkout-relative path ``configs/imagenet.yaml`` given outside the checkout
(the README's commands, run from any directory after an install).
"""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CONFIGS_PREFIX = "configs/"
_YAML = (".yaml", ".yml")


def configs_dir() -> str:
    """The shipped ``configs/`` folder: inside the installed package, else the checkout's."""
    installed = os.path.join(PACKAGE_DIR, "configs")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(PACKAGE_DIR), "configs")


def studies_dir() -> str:
    """The shipped study specs (``configs/studies/``)."""
    return os.path.join(configs_dir(), "studies")


def recipe_names() -> list[str]:
    """The shipped training recipes, by name (``configs/*.yaml`` without the extension)."""
    directory = configs_dir()
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.splitext(f)[0] for f in os.listdir(directory) if f.endswith(_YAML))


def find_recipe(recipe: str) -> str:
    """The file for ``--config=recipe``: an existing path, else the shipped recipe it names.

    Returns ``recipe`` unchanged when nothing matches, so the caller's "does
    not exist" error names what the user typed.
    """
    if "://" in recipe or os.path.exists(recipe):
        return recipe
    normalized = recipe.replace(os.sep, "/")
    if normalized.startswith("./"):
        normalized = normalized[2:]
    if normalized.startswith(CONFIGS_PREFIX):
        relative = normalized[len(CONFIGS_PREFIX):]
    elif "/" not in normalized:
        relative = normalized
    else:
        return recipe
    candidates = [relative] if relative.endswith(_YAML) else [relative + ext for ext in _YAML]
    for candidate in candidates:
        path = os.path.join(configs_dir(), *candidate.split("/"))
        if os.path.isfile(path):
            return path
    return recipe


def missing_recipe_message(recipe: str) -> str:
    """The one-line error for a ``--config`` that is neither a file nor a shipped recipe."""
    names = ", ".join(recipe_names()) or "none found (is the package installed with its configs?)"
    return f"config file {recipe} does not exist; shipped recipes (give --config=NAME): {names}"
