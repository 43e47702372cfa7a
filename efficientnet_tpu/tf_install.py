"""Which TensorFlow distributions are installed, and the one-line fix when that is not exactly one.

TensorFlow ships as several distributions that all write the same
``tensorflow/`` package: ``tensorflow`` (CPU/GPU), ``tensorflow-cpu``,
``tensorflow-tpu`` (the TPU build, with libtpu), ``tf-nightly``,
``tensorflow-macos``, ... With two of them installed, the files on disk are a
mix decided by install order, so a TPU VM may silently import the CPU build.
With none, ``import tensorflow`` fails deep inside Keras or our data code.

This module finds them from the installed metadata alone (no TensorFlow
import, about a millisecond), so the package can say which is wrong and how
to fix it before anything heavy loads. ``import efficientnet_tpu`` calls
``install_missing_hook`` and ``warn_if_wrong``; ``python -m
efficientnet_tpu.doctor`` reports the same facts among its checks.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.metadata
import importlib.util
import sys
import warnings
from typing import Callable, Iterable, Sequence

# Normalized names that start a TensorFlow build's distribution name; anything
# so named is confirmed by its files (tensorflow-datasets is not TensorFlow).
_PREFIXES = ("tensorflow", "tf-nightly", "tf_nightly", "intel-tensorflow", "intel_tensorflow")

# The oldest and newest TensorFlow (major, minor) the CI runs the suite on; setup.py's TENSORFLOW says the same.
SUPPORTED = ((2, 20), (2, 21))

# The libtpu each TPU build was released with: tensorflow-tpu 2.20.0 declares libtpu~=0.0.14, which alone
# lets pip take any newer 0.0.x; setup.py's [tpu] extra pins the same pair.
LIBTPU_FOR = {"2.20.0": "0.0.14"}

INSTALL_HINT = ("pip install 'efficientnet_tpu[cpu]' (a GPU: [gpu]; a Cloud TPU VM or Colab TPU: [tpu]; "
                "from a checkout: pip install -e '.[cpu]'; see docs/tpu.md)")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """One installed distribution that provides the ``tensorflow`` package."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _ships_tensorflow(dist: importlib.metadata.Distribution) -> bool:
    """True for a distribution whose files include the ``tensorflow`` package itself.

    A metapackage (Windows' ``tensorflow`` requiring ``tensorflow-intel``)
    ships no files of its own and is not counted.
    """
    top_level = dist.read_text("top_level.txt")
    if top_level is not None and top_level.strip():
        return "tensorflow" in top_level.split()
    files = dist.files or []
    return any(str(f).replace("\\", "/") == "tensorflow/__init__.py" for f in files)


def installed_distributions(dists: Iterable[importlib.metadata.Distribution] | None = None) -> list[Distribution]:
    """Every installed distribution providing ``tensorflow``, by name (``dists`` for tests)."""
    found: dict[str, Distribution] = {}
    for dist in importlib.metadata.distributions() if dists is None else dists:
        # PathDistribution knows its name from the folder name; reading METADATA costs 50x more.
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or ""
        if not _normalize(name).startswith(_PREFIXES) or not _ships_tensorflow(dist):
            continue
        public = dist.metadata["Name"] or name
        found.setdefault(_normalize(public), Distribution(_normalize(public), dist.version))
    return sorted(found.values(), key=lambda d: d.name)


def missing_message() -> str:
    """The one line for "no TensorFlow installed"."""
    return f"TensorFlow is not installed: {INSTALL_HINT}"


def several_message(found: Sequence[Distribution]) -> str:
    """The one line for two or more TensorFlow distributions side by side."""
    names = ", ".join(str(d) for d in found)
    keep = next((d for d in found if "tpu" in d.name), found[-1])
    return (f"{len(found)} TensorFlow distributions are installed ({names}); they write the same tensorflow/ "
            f"files, so which one runs depends on install order: keep one, e.g. pip uninstall -y "
            f"{' '.join(d.name for d in found)} && pip install {keep.name}=={keep.version} "
            "(the build this machine needs: docs/tpu.md)")


def version_tuple(version: str) -> tuple[int, int] | None:
    """(2, 20) from '2.20.0', '2.21.0rc1' or '2.22.0.dev20260101'; None when unreadable."""
    parts = version.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or "x")
    except (IndexError, ValueError):
        return None


def unsupported_message(dist: Distribution) -> str | None:
    """The one line for a TensorFlow outside the tested range, else None."""
    have = version_tuple(dist.version)
    if have is None or SUPPORTED[0] <= have <= SUPPORTED[1]:
        return None
    low, high = (".".join(map(str, v)) for v in SUPPORTED)
    return (f"{dist} is outside the TensorFlow releases this package is tested on ({low} to {high}): "
            f"{INSTALL_HINT}")


def problem(found: Sequence[Distribution] | None = None) -> str | None:
    """None when exactly one TensorFlow is installed, else the one-line message with the fix.

    A ``tensorflow`` importable without any distribution metadata (a source
    build on ``PYTHONPATH``) counts as one.
    """
    found = installed_distributions() if found is None else list(found)
    if len(found) > 1:
        return several_message(found)
    if not found and importlib.util.find_spec("tensorflow") is None:
        return missing_message()
    return None


class _MissingTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: reached only when no other finder has ``tensorflow``.

    It turns the bare ``No module named 'tensorflow'`` (raised wherever Keras
    or our code first imports it) into the message with the install line.
    Still a ModuleNotFoundError, so ``try: import tensorflow`` fallbacks in
    other libraries behave as before. Only an import statement (or
    ``importlib.import_module``) gets the message: a probe such as
    ``importlib.util.find_spec("tensorflow")`` still sees None, told apart by
    the import system's own caller (``_find_and_load_unlocked``, the same name
    in every CPython since 3.4).
    """

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: D401  (the finder protocol)
        if fullname == "tensorflow" and _called_by_import():
            raise ModuleNotFoundError(missing_message(), name="tensorflow")
        return None


def _called_by_import() -> bool:
    frame = sys._getframe(1)  # pylint: disable=protected-access
    for _ in range(4):
        frame = frame.f_back
        if frame is None:
            return False
        if frame.f_code.co_name == "_find_and_load_unlocked":
            return True
    return False


def install_missing_hook(find_spec: Callable[[str], object] = importlib.util.find_spec) -> bool:
    """Adds the finder when TensorFlow is not importable; returns whether it did."""
    if any(isinstance(f, _MissingTensorFlowFinder) for f in sys.meta_path):
        return True
    if "tensorflow" in sys.modules or find_spec("tensorflow") is not None:
        return False
    sys.meta_path.append(_MissingTensorFlowFinder())
    return True


class TensorFlowInstallWarning(UserWarning):
    """Two TensorFlow distributions side by side, or one outside the tested releases."""


def warn_if_wrong(found: Sequence[Distribution] | None = None) -> str | None:
    """One warning line when two TensorFlows are installed or the one is untested; returns it.

    A missing TensorFlow is not warned about here: the model package runs on
    JAX without it, and ``install_missing_hook`` explains it when imported.
    """
    found = installed_distributions() if found is None else list(found)
    if len(found) > 1:
        message = several_message(found)
    elif found:
        message = unsupported_message(found[0])
    else:
        message = None
    if message:
        # No source line under it: the warning stays one line on the console.
        warnings.warn_explicit(message, TensorFlowInstallWarning, filename="efficientnet_tpu", lineno=0,
                               module="efficientnet_tpu")
    return message
