"""The optional packages a study's report renders with (the ``studies`` extra of setup.py).

Each is imported where a table, figure or summary is made, never when a spec
is parsed or checked, so a bad spec is refused the same way with or without
them. Rendering without one stops with one line naming the package and the
pip extra that installs it, rather than a traceback or a silently missing part.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Sequence

EXTRA = "studies"
REPORT_PACKAGES = ("matplotlib", "tabulate", "tensorboard")  # figures, tables, HParams summaries
INSTALL = f"pip install 'efficientnet_tpu[{EXTRA}]' (in a checkout: pip install -e '.[{EXTRA}]')"


class MissingPackage(ImportError):
    """An optional package that rendering needs is not installed; the message is one line."""


def _message(what: str, packages: Sequence[str]) -> str:
    return f"{what} needs {', '.join(packages)}, not installed here: {INSTALL}"


def require(module: str, what: str) -> ModuleType:
    """``module`` imported, or MissingPackage saying that ``what`` needs its package and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackage(_message(what, [module.split(".")[0]])) from None


def missing(packages: Sequence[str] = REPORT_PACKAGES) -> list[str]:
    """The packages among ``packages`` that cannot be imported here."""
    absent = []
    for package in packages:
        try:
            importlib.import_module(package)
        except ImportError:
            absent.append(package)
    return absent


def check(what: str = "the study report", packages: Sequence[str] = REPORT_PACKAGES) -> None:
    """MissingPackage naming every absent package at once, before anything is written."""
    absent = missing(packages)
    if absent:
        raise MissingPackage(_message(what, absent))
