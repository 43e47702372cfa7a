"""pip itself resolves this project's install lines to exactly one TensorFlow, offline.

A wheelhouse of stand-in wheels (tiny zip files with real wheel metadata) holds
``tensorflow``, ``tensorflow-tpu`` (declaring ``libtpu~=0.0.14`` as the real
2.20.0 wheel does), two libtpu releases and every other requirement; our
package is a wheel carrying the requirements setup.py declares. ``pip install
--dry-run --report`` against empty venvs and venvs that already hold one
TensorFlow (installed by pip from the same wheelhouse) shows what a user's pip
would add: never a second TensorFlow, the TPU build with the libtpu it names.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import venv
import zipfile

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_NAMES = {"tensorflow", "tensorflow-cpu", "tensorflow-tpu", "tf-nightly", "tensorflow-macos"}
# Versions tried, in order, for a stand-in of each requirement: the first its specifier allows.
CANDIDATE_VERSIONS = ("2.21.0", "3.15.1", "4.9.10", "6.0", "1.5", "11.0", "99.0")


def setup_kwargs() -> dict:
    """setup.py's arguments, read by running it with setuptools.setup replaced (nothing is built)."""
    captured = {}
    original, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        os.chdir(ROOT)
        with open("setup.py", encoding="utf-8") as f:
            exec(compile(f.read(), "setup.py", "exec"), {"__name__": "__main__"})  # noqa: S102
    finally:
        setuptools.setup = original
        os.chdir(cwd)
    return captured


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(directory: str, name: str, version: str, requires: list[str] = (),
                top_level: str | None = None, extras: tuple[str, ...] = ()) -> str:
    """A minimal valid wheel: METADATA, WHEEL, RECORD and one package ``top_level``."""
    dist = re.sub(r"[-.]+", "_", name)
    top_level = top_level or dist.lower()
    info = f"{dist}-{version}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
                         + [f"Provides-Extra: {e}" for e in extras]
                         + [f"Requires-Dist: {r}" for r in requires]) + "\n"
    files = {
        f"{top_level}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test_install\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": f"{top_level}\n".encode(),
    }
    path = os.path.join(directory, f"{dist}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in files.items():
            wheel.writestr(member, data)
        record = "\n".join(_record_line(m, d) for m, d in files.items()) + f"\n{info}/RECORD,,\n"
        wheel.writestr(f"{info}/RECORD", record)
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """Stand-ins for TensorFlow's builds, libtpu, every requirement of setup.py, and our package."""
    house = str(tmp_path_factory.mktemp("wheelhouse"))
    kwargs = setup_kwargs()
    requirements = [Requirement(r) for r in kwargs["install_requires"]]
    requirements += [Requirement(r) for group in kwargs["extras_require"].values() for r in group]
    write_wheel(house, "tensorflow", "2.21.0", top_level="tensorflow", extras=("and-cuda",))
    write_wheel(house, "tensorflow", "2.20.0", top_level="tensorflow", extras=("and-cuda",))
    write_wheel(house, "tensorflow-tpu", "2.20.0", ["libtpu~=0.0.14"], top_level="tensorflow")
    write_wheel(house, "libtpu", "0.0.14")
    write_wheel(house, "libtpu", "0.0.52")  # what libtpu~=0.0.14 alone lets pip take today
    made = {"tensorflow", "tensorflow-tpu", "libtpu"}
    for requirement in requirements:
        name = requirement.name.lower()
        if name in made:
            continue
        version = next(v for v in CANDIDATE_VERSIONS if requirement.specifier.contains(v))
        write_wheel(house, name, version)
        made.add(name)
    requires = list(kwargs["install_requires"])
    for extra, group in kwargs["extras_require"].items():
        requires += [f"{r}; extra == {extra!r}" for r in group]
    ours = write_wheel(house, kwargs["name"], kwargs["version"], requires, extras=tuple(kwargs["extras_require"]))
    return house, ours


def pip(python: str, *args: str) -> subprocess.CompletedProcess:
    """The pip running these tests, acting on the venv of ``python``, with no config and no index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return subprocess.run([sys.executable, "-m", "pip", "--python", python, *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def make_venv(path, *installed: str, house: str) -> str:
    """An empty venv (no pip of its own), optionally holding ``installed`` from the wheelhouse."""
    venv.create(str(path), with_pip=False, clear=True)
    python = os.path.join(str(path), "bin", "python")
    if installed:
        done = pip(python, "install", "--no-index", "--find-links", house, *installed)
        assert done.returncode == 0, done.stderr
    return python


def resolve(python: str, target: str, house: str, tmp_path) -> dict[str, str]:
    """What ``pip install target`` would install into that venv: {name: version}."""
    report = tmp_path / "report.json"
    done = pip(python, "install", "--dry-run", "--quiet", "--no-index", "--find-links", house, "--report", str(report), target)
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text())
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in data["install"]}


def installed(python: str) -> dict[str, str]:
    done = pip(python, "list", "--format=json")
    assert done.returncode == 0, done.stderr
    return {item["name"].lower(): item["version"] for item in json.loads(done.stdout)}


def tensorflows(names) -> set[str]:
    return {n for n in names if n in TF_NAMES}


def test_tpu_vm_with_tensorflow_tpu_gets_no_second_tensorflow(wheelhouse, tmp_path):
    house, ours = wheelhouse
    python = make_venv(tmp_path / "tpu_vm", "tensorflow-tpu==2.20.0", "libtpu==0.0.14", house=house)
    # Every extra at once (extras only add requirements), and the bare package.
    for extras in ("[tpu,tpu-node,digits,jax,studies,test]", ""):
        added = resolve(python, f"efficientnet_tpu{extras} @ file://{ours}", house, tmp_path)
        assert "efficientnet_tpu" in {n.replace("-", "_") for n in added}
        assert not tensorflows(added), (extras, added)  # tensorflow-tpu stays the only one
    assert tensorflows(installed(python)) == {"tensorflow-tpu"}


def test_fresh_tpu_install_resolves_to_the_tpu_build_and_its_pinned_libtpu(wheelhouse, tmp_path):
    house, ours = wheelhouse
    python = make_venv(tmp_path / "fresh", house=house)
    added = resolve(python, f"efficientnet_tpu[tpu] @ file://{ours}", house, tmp_path)
    assert tensorflows(added) == {"tensorflow-tpu"} and added["tensorflow-tpu"] == "2.20.0"
    assert added["libtpu"] == "0.0.14"  # not 0.0.52, which the TPU build's own libtpu~=0.0.14 allows
    # The pin is ours: the TPU build alone would take the newest libtpu.
    alone = resolve(python, "tensorflow-tpu==2.20.0", house, tmp_path)
    assert alone["libtpu"] == "0.0.52"


def test_cpu_machine_lines_bring_one_cpu_tensorflow(wheelhouse, tmp_path):
    house, ours = wheelhouse
    python = make_venv(tmp_path / "fresh", house=house)
    for extras in ("[cpu,digits,test]", "[gpu]"):  # the README's two commands (cpu + digits, cpu + test), a GPU
        added = resolve(python, f"efficientnet_tpu{extras} @ file://{ours}", house, tmp_path)
        assert tensorflows(added) == {"tensorflow"} and added["tensorflow"] == "2.21.0", (extras, added)
    bare = resolve(python, f"efficientnet_tpu @ file://{ours}", house, tmp_path)
    assert not tensorflows(bare)  # the bare install requires none (importing then says how to add one)
    with_cpu_tf = make_venv(tmp_path / "cpu", "tensorflow==2.20.0", house=house)
    added = resolve(with_cpu_tf, f"efficientnet_tpu[digits,test] @ file://{ours}", house, tmp_path)
    assert not tensorflows(added)  # a CPU/GPU TensorFlow already there is kept


def test_tensorflow_bounds_agree_between_setup_and_the_runtime_check():
    from efficientnet_tpu import tf_install

    kwargs = setup_kwargs()
    cpu = Requirement(kwargs["extras_require"]["cpu"][0])
    low, high = tf_install.SUPPORTED
    allowed = SpecifierSet(str(cpu.specifier))
    assert cpu.name == "tensorflow"
    assert f"{low[0]}.{low[1]}.0" in allowed and f"{high[0]}.{high[1]}.9" in allowed
    assert f"{low[0]}.{low[1] - 1}.9" not in allowed and f"{high[0]}.{high[1] + 1}.0" not in allowed
    tpu = [Requirement(r) for r in kwargs["extras_require"]["tpu"]]
    assert {r.name for r in tpu} == {"tensorflow-tpu", "libtpu"}
    assert all(str(r.specifier).startswith("==") for r in tpu)  # exact pins, not ~= ranges
    pins = {r.name: str(r.specifier)[2:] for r in tpu}
    assert tf_install.LIBTPU_FOR[pins["tensorflow-tpu"]] == pins["libtpu"]  # the doctor checks the same pair
    assert not any(Requirement(r).name.startswith("tensorflow") and Requirement(r).name != "tensorflow-datasets"
                   for r in kwargs["install_requires"])
    for extra, group in kwargs["extras_require"].items():  # only cpu/gpu/tpu bring a TensorFlow
        names = {Requirement(r).name for r in group}
        assert not tensorflows(names) or extra in ("cpu", "gpu", "tpu"), extra


def package_folder(package: str, package_dir: dict[str, str]) -> str:
    """The source folder setuptools reads ``package`` from (the longest mapped prefix wins)."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return os.path.join(ROOT, package_dir[prefix], *parts[cut:])
    return os.path.join(ROOT, *parts)


def test_every_file_in_configs_ships_in_the_package():
    kwargs = setup_kwargs()
    assert kwargs["package_dir"]["efficientnet_tpu.configs"] == "configs"  # the folder stays at the top
    shipped = set()
    for package, patterns in kwargs["package_data"].items():
        assert package in kwargs["packages"], package
        folder = package_folder(package, kwargs["package_dir"])
        for pattern in patterns:
            shipped |= {os.path.relpath(os.path.join(folder, f), ROOT) for f in os.listdir(folder)
                        if fnmatch.fnmatch(f, pattern)}
    on_disk = {os.path.relpath(os.path.join(d, f), ROOT) for d, _, files in os.walk(os.path.join(ROOT, "configs"))
               for f in files}
    assert on_disk and on_disk <= shipped, sorted(on_disk - shipped)
