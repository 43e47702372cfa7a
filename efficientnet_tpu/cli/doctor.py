"""``python -m efficientnet_tpu.doctor``: is this machine ready to train? One screen, one fix per problem.

    python -m efficientnet_tpu.doctor [--model_dir=gs://BUCKET/runs/x] [--data_dir=DIR]

Checks, in order: Python; every installed TensorFlow distribution and the one
imported; Keras and its backend; libtpu; the TPU chips and the ``--tpu``
value ``--tpu=auto`` would choose; GPUs; the TFDS data_dir and which datasets
of the shipped recipes it holds; write access to ``--model_dir`` (local or
gs://). Each line is ``ok``, ``info`` (nothing to do, e.g. no GPU on a
laptop), ``warn`` (works, but probably not what you want) or ``FAIL``
followed by ``fix:``. Exit status 0 when nothing failed, 1 otherwise (2 for
bad flags), so a setup script can run it.

The facts come through ``Machine``, whose fields tests replace with
stand-ins for TPU and GPU machines (as tests/test_train_tpu.py does for
``--tpu=auto``); nothing here initializes a TPU or takes its chips.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import importlib.util
import os
import sys
import uuid
from typing import Any, Callable, Mapping, Sequence

from absl import flags

from efficientnet_tpu import exit_codes, shipped, tf_install
from efficientnet_tpu.cli import common
from efficientnet_tpu.training import tpu as tpu_lib

NOT_READY = 1  # the doctor's own "something failed" status (documented above)
OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report, and its fix when the status is warn or FAIL."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclasses.dataclass(frozen=True)
class TensorFlowFacts:
    """What the imported TensorFlow says about itself (``error`` when it did not import)."""

    version: str = ""
    location: str = ""
    cuda_build: bool = False
    cuda: str = ""
    cudnn: str = ""
    gpus: tuple[str, ...] = ()
    error: str = ""


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_devices() -> list[str]:
    return sorted(glob.glob("/dev/nvidia[0-9]*"))


def _import_tensorflow() -> TensorFlowFacts:
    """Imports TensorFlow quietly and lists its GPUs (the TPU is never initialized here)."""
    from efficientnet_tpu.tf_startup import quiet_stderr  # pylint: disable=import-outside-toplevel

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_stderr():
            import tensorflow as tf  # pylint: disable=import-outside-toplevel

            gpus = tuple(d.name for d in tf.config.list_physical_devices("GPU"))
    except Exception as error:  # pylint: disable=broad-except  # a broken install raises anything
        return TensorFlowFacts(error=exit_codes.one_line(error))
    build = dict(tf.sysconfig.get_build_info())
    return TensorFlowFacts(version=tf.__version__, location=os.path.dirname(tf.__file__),
                           cuda_build=bool(build.get("is_cuda_build")), cuda=str(build.get("cuda_version", "")),
                           cudnn=str(build.get("cudnn_version", "")), gpus=gpus)


def _keras() -> tuple[str, str]:
    """(version, backend) of Keras, or ("", reason) when it does not import."""
    try:
        import keras  # pylint: disable=import-outside-toplevel
    except Exception as error:  # pylint: disable=broad-except
        return "", exit_codes.one_line(error)
    return keras.__version__, keras.backend.backend()


def _tfds_prepared(tfds_name: str, data_dir: str | None) -> bool:
    import logging  # pylint: disable=import-outside-toplevel

    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "Variant folder ... has no dataset_info.json": the answer is no
    try:
        return bool(tfds.builder(tfds_name, data_dir=data_dir).is_prepared())
    finally:
        absl_logger.setLevel(level)


def _tfds_default_dir() -> str:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    return tfds.core.constants.get_default_data_dir()


def _write_probe(model_dir: str) -> None:
    """Writes, reads back and deletes one small file in ``model_dir`` (created if missing, removed if so)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    created = not tf.io.gfile.exists(model_dir)
    if created:
        tf.io.gfile.makedirs(model_dir)
    probe = model_dir.rstrip("/") + f"/.doctor_write_test_{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("efficientnet_tpu doctor\n")
        with tf.io.gfile.GFile(probe, "r") as f:
            if f.read() != "efficientnet_tpu doctor\n":
                raise OSError(f"{probe} read back different bytes")
    finally:
        if tf.io.gfile.exists(probe):
            tf.io.gfile.remove(probe)
        if created and not tf.io.gfile.listdir(model_dir):
            tf.io.gfile.rmtree(model_dir)


@dataclasses.dataclass
class Machine:
    """Every fact the doctor reads; tests replace fields with stand-ins."""

    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
    python: tuple[int, int, int] = tuple(sys.version_info[:3])
    executable: str = sys.executable
    tensorflows: Callable[[], list[tf_install.Distribution]] = tf_install.installed_distributions
    version_of: Callable[[str], str | None] = _version
    import_tensorflow: Callable[[], TensorFlowFacts] = _import_tensorflow
    keras: Callable[[], tuple[str, str]] = _keras
    tpu_devices: Callable[[], list[str]] = tpu_lib._tpu_devices  # pylint: disable=protected-access
    nvidia_devices: Callable[[], list[str]] = _nvidia_devices
    tfds_prepared: Callable[[str, str | None], bool] = _tfds_prepared
    tfds_default_dir: Callable[[], str] = _tfds_default_dir
    write_probe: Callable[[str], None] = _write_probe
    recipes: Callable[[], dict[str, list[str]]] = lambda: recipe_datasets()


# The TFDS dataset behind each of our dataset names that TFDS holds.
TFDS_NAMES = {"imagenet2012": "imagenet2012", "cifar10": "cifar10", "cifar100": "cifar100",
              "cifar10_3class": "cifar10"}


def recipe_datasets() -> dict[str, list[str]]:
    """{TFDS dataset: [shipped recipes that train on it]} from the shipped configs/*.yaml."""
    import yaml  # pylint: disable=import-outside-toplevel

    used: dict[str, list[str]] = {}
    for name in shipped.recipe_names():
        path = shipped.find_recipe(name)
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        tfds_name = TFDS_NAMES.get(str(data.get("dataset", "")))
        if tfds_name:
            used.setdefault(tfds_name, []).append(name)
    return used


# ------------------------------------------------------------------ the checks

def check_python(m: Machine) -> Check:
    version = ".".join(map(str, m.python))
    if m.python[:2] < (3, 10):
        return Check("Python", FAIL, f"{version} ({m.executable})", "install Python 3.10 or newer")
    return Check("Python", OK, f"{version} ({m.executable})")


def check_tensorflow(m: Machine, found: Sequence[tf_install.Distribution], tf: TensorFlowFacts) -> Check:
    installed = ", ".join(str(d) for d in found) or "none"
    if not found and not tf.version:
        return Check("TensorFlow", FAIL, "not installed", tf_install.INSTALL_HINT)
    if len(found) > 1:
        imported = f"; imported {tf.version} from {tf.location}" if tf.version else ""
        return Check("TensorFlow", FAIL, f"installed: {installed}{imported}",
                     tf_install.several_message(found).split(": keep one, ", 1)[-1])
    if tf.error:
        return Check("TensorFlow", FAIL, f"installed: {installed}; import fails: {tf.error}",
                     f"reinstall it: pip install --force-reinstall {found[0].name}=={found[0].version}"
                     if found else tf_install.INSTALL_HINT)
    build = f"CUDA {tf.cuda} build" if tf.cuda_build else "no CUDA"
    detail = f"{installed}, imported {tf.version} ({build}) from {tf.location}"
    dist = found[0] if found else tf_install.Distribution("tensorflow (no metadata)", tf.version)
    unsupported = tf_install.unsupported_message(tf_install.Distribution(dist.name, tf.version))
    if unsupported:
        low, high = (".".join(map(str, v)) for v in tf_install.SUPPORTED)
        return Check("TensorFlow", FAIL, f"{detail}: not one of the tested releases ({low} to {high})",
                     tf_install.INSTALL_HINT)
    return Check("TensorFlow", OK, detail)


def check_keras(m: Machine, tf: TensorFlowFacts) -> Check:
    if not tf.version:
        return Check("Keras", INFO, "not checked (no TensorFlow)")
    version, backend = m.keras()
    if not version:
        return Check("Keras", FAIL, f"does not import: {backend}", "pip install 'keras>=3.10,<4'")
    if backend != "tensorflow":
        return Check("Keras", FAIL, f"{version}, backend {backend}",
                     "training, evaluation and export run on TensorFlow: unset KERAS_BACKEND or export "
                     "KERAS_BACKEND=tensorflow (and check ~/.keras/keras.json)")
    return Check("Keras", OK, f"{version}, backend tensorflow")


def check_libtpu(m: Machine, found: Sequence[tf_install.Distribution]) -> Check:
    libtpu = m.version_of("libtpu") or m.version_of("libtpu-nightly")
    tpu_build = next((d for d in found if d.name == "tensorflow-tpu"), None)
    if tpu_build is None:
        detail = f"{libtpu} (unused: TensorFlow here is not the TPU build)" if libtpu else "not installed"
        return Check("libtpu", INFO, detail + "; only TensorFlow's TPU build needs it")
    wanted = tf_install.LIBTPU_FOR.get(tpu_build.version)
    pin = f"libtpu=={wanted}" if wanted else "libtpu"
    if not libtpu:
        return Check("libtpu", FAIL, f"missing, but {tpu_build} needs it", f"pip install {pin}")
    if wanted and libtpu != wanted:
        return Check("libtpu", FAIL, f"{libtpu}; {tpu_build} was released with libtpu {wanted}",
                     f"pip install {pin} (or pip install 'efficientnet_tpu[tpu]')")
    return Check("libtpu", OK, f"{libtpu} (the one {tpu_build} was released with)" if wanted else libtpu)


def check_tpu(m: Machine, found: Sequence[tf_install.Distribution]) -> Check:
    devices = m.tpu_devices()
    chosen = tpu_lib.detect_tpu(m.environ, lambda: devices)
    shown = ", ".join(devices[:4]) + (f" (+{len(devices) - 4})" if len(devices) > 4 else "")
    if chosen is None:
        return Check("TPU", INFO, "none (no /dev/accel*, /dev/vfio/*, COLAB_TPU_ADDR or TPU_NAME): "
                     "train without --tpu; --tpu=auto would stop with an error")
    if tpu_lib.is_remote(chosen):
        detail = f"a TPU node: --tpu=auto uses {chosen}"
        if importlib.util.find_spec("cloud_tpu_client") is None and m.version_of("cloud-tpu-client") is None:
            return Check("TPU", WARN, detail + "; its runtime version cannot be checked",
                         "pip install 'efficientnet_tpu[tpu-node]' (cloud-tpu-client); model_dir and "
                         "data_dir must be gs:// (the node reads and writes them itself)")
        return Check("TPU", OK, detail + " (runtime version checked with cloud-tpu-client)")
    detail = f"this machine's chips ({shown}): --tpu=auto uses local"
    if not any(d.name == "tensorflow-tpu" for d in found):
        others = " ".join(d.name for d in found)
        undo = f"pip uninstall -y {others} && " if others else ""
        return Check("TPU", FAIL, detail + ", but TensorFlow here is not the TPU build, so the TPU sits idle",
                     f"{undo}pip install 'efficientnet_tpu[tpu]' (tensorflow-tpu and its libtpu)")
    return Check("TPU", OK, detail)


def check_gpu(m: Machine, tf: TensorFlowFacts) -> Check:
    hardware = m.nvidia_devices()
    if tf.gpus:
        versions = f" (CUDA {tf.cuda}, cuDNN {tf.cudnn})" if tf.cuda else ""
        return Check("GPU", OK, f"{len(tf.gpus)} visible to TensorFlow{versions}: --strategy=auto uses them")
    if not hardware:
        return Check("GPU", INFO, "none")
    detail = f"{len(hardware)} NVIDIA device(s) ({', '.join(hardware[:4])}) but TensorFlow sees no GPU"
    if not tf.version:
        return Check("GPU", FAIL, detail, "install TensorFlow first: pip install 'efficientnet_tpu[gpu]'")
    if not tf.cuda_build:
        return Check("GPU", FAIL, detail + " (this TensorFlow has no CUDA)",
                     "pip install 'efficientnet_tpu[gpu]' (tensorflow[and-cuda]) in place of the current one")
    return Check("GPU", FAIL, detail, "check the NVIDIA driver (nvidia-smi) and the CUDA libraries: "
                 "pip install 'tensorflow[and-cuda]' brings CUDA and cuDNN; CUDA_VISIBLE_DEVICES must not hide them")


def check_tfds(m: Machine, data_dir: str | None, tf: TensorFlowFacts) -> Check:
    if not tf.version:
        return Check("TFDS", INFO, "not checked (no TensorFlow)")
    try:
        root = data_dir or m.tfds_default_dir()
        used = m.recipes()
        prepared = {name: m.tfds_prepared(name, data_dir) for name in sorted(used)}
    except Exception as error:  # pylint: disable=broad-except  # tfds, gs:// credentials, ...
        return Check("TFDS", FAIL, f"data_dir {data_dir or 'default'}: {exit_codes.one_line(error)}",
                     "check --data_dir (a local folder or gs://BUCKET/tensorflow_datasets) and its access rights")
    have = [n for n, ok in prepared.items() if ok]
    missing = [n for n, ok in prepared.items() if not ok]
    def uses(name: str) -> str:
        count = len(used[name])
        return f"{name} ({count} recipe{'s' if count != 1 else ''})"

    detail = (f"data_dir {root}: " + (f"prepared: {', '.join(have)}" if have else "none of the recipes' datasets")
              + (f"; not prepared: {', '.join(uses(n) for n in missing)}" if missing else "")
              + (" (the digits demo needs none)" if missing else ""))
    if missing:
        first = missing[0]
        fix = (f"tfds build {first} --data_dir={root} (ImageNet needs its tar files first: docs/data.md); "
               f"other data_dir: --data_dir")
        if data_dir and "://" not in data_dir and not os.path.isdir(data_dir):
            return Check("TFDS", FAIL, f"data_dir {data_dir} does not exist", "create it, or give another --data_dir")
        return Check("TFDS", INFO, detail, fix)
    return Check("TFDS", OK, detail)


def check_model_dir(m: Machine, model_dir: str | None, tf: TensorFlowFacts, tpu: str | None) -> Check:
    if not model_dir:
        return Check("model_dir", INFO, "not checked (give --model_dir=DIR or gs://BUCKET/PATH)")
    if tpu and tpu_lib.is_remote(tpu) and not model_dir.startswith("gs://"):
        return Check("model_dir", FAIL, f"{model_dir} is local, but a TPU node writes checkpoints itself",
                     "use --model_dir=gs://BUCKET/PATH")
    if not tf.version:
        return Check("model_dir", INFO, f"{model_dir}: not checked (no TensorFlow)")
    try:
        m.write_probe(model_dir)
    except Exception as error:  # pylint: disable=broad-except  # PermissionDenied, NotFound, credentials, ...
        reason = exit_codes.one_line(error)
        fix = ("check the bucket name and that this machine's account may write it (gcloud auth "
               "application-default login, or grant the VM's service account roles/storage.objectAdmin)"
               if model_dir.startswith("gs://") else "choose a directory this user can write")
        return Check("model_dir", FAIL, f"{model_dir} is not writable: {reason}", fix)
    return Check("model_dir", OK, f"{model_dir} is writable")


def run_checks(m: Machine, model_dir: str | None = None, data_dir: str | None = None) -> list[Check]:
    """Every check, in report order."""
    found = m.tensorflows()
    tf = m.import_tensorflow() if (found or importlib.util.find_spec("tensorflow")) else TensorFlowFacts()
    if not found and not tf.version:
        tf = TensorFlowFacts()
    tpu = tpu_lib.detect_tpu(m.environ, m.tpu_devices)
    return [
        check_python(m),
        check_tensorflow(m, found, tf),
        check_keras(m, tf),
        check_libtpu(m, found),
        check_tpu(m, found),
        check_gpu(m, tf),
        check_tfds(m, data_dir, tf),
        check_model_dir(m, model_dir, tf, tpu),
    ]


def render(checks: Sequence[Check]) -> str:
    """The screen: one line per check, a ``fix:`` line under each that has one, and the verdict."""
    lines = []
    for check in checks:
        lines.append(f"{check.status:4s}  {check.name:10s} {check.detail}")
        if check.fix:
            lines.append(f"{'':16s} fix: {check.fix}")
    failed = [c.name for c in checks if c.status == FAIL]
    lines.append(f"not ready: fix {', '.join(failed)}" if failed else "ready")
    return "\n".join(lines)


# argparse's wording, which the doctor had before it moved onto absl flags (setup scripts may match it).
WORDING = common.Wording(hint=" (see --help)", unexpected="unrecognized arguments: {} (see --help)",
                         unknown_flag="unrecognized arguments: {} (see --help)")


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("model_dir", None, "Check that this directory (local or gs://) can be written.",
                        flag_values=values)
    flags.DEFINE_string("data_dir", None, "The TFDS data_dir to look in (default: TFDS's own).", flag_values=values)


def main(argv: Sequence[str] | None = None, machine: Machine | None = None) -> int:
    """Runs the checks the flags in ``argv`` (default: sys.argv[1:]) ask for; 0 ready, 1 not, 2 bad flags."""
    def body(values: flags.FlagValues) -> int:
        checks = run_checks(machine or Machine(), values.model_dir, values.data_dir)
        print(render(checks), flush=True)
        return NOT_READY if any(c.status == FAIL for c in checks) else exit_codes.OK

    return common.run_cli(__doc__, define_flags, body, argv, WORDING)


if __name__ == "__main__":
    sys.exit(main())
