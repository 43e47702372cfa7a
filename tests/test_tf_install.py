"""One TensorFlow: the installed distributions read from metadata, the one-line messages, the import-time
hook when none is installed, and the start-up noise filter on both supported releases' log formats."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest

from efficientnet_tpu import tf_install
from efficientnet_tpu.tf_startup import filter_noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeDist:
    """What importlib.metadata gives for one installed distribution."""

    def __init__(self, name, version, top_level=None, files=()):
        self._normalized_name = name.lower().replace("-", "_")
        self.metadata = {"Name": name}
        self.version = version
        self._top_level, self.files = top_level, list(files)

    def read_text(self, filename):
        return self._top_level if filename == "top_level.txt" else None


def test_only_distributions_that_ship_the_tensorflow_package_count():
    dists = [FakeDist("tensorflow", "2.21.0", "tensorflow\n"),
             FakeDist("tensorflow-datasets", "4.9.10", "tensorflow_datasets\n"),
             FakeDist("tensorflow-io-gcs-filesystem", "0.37.1", "tensorflow_io_gcs_filesystem\n"),
             FakeDist("tf-nightly", "2.22.0.dev20260101", None, ["tensorflow/__init__.py"]),  # no top_level.txt
             FakeDist("tensorflow-intel-meta", "2.21.0", None, []),  # a metapackage: no files of its own
             FakeDist("keras", "3.15.1", "keras\n")]
    found = tf_install.installed_distributions(dists)
    assert [str(d) for d in found] == ["tensorflow 2.21.0", "tf-nightly 2.22.0.dev20260101"]


def test_messages_name_the_fix():
    tpu, cpu = tf_install.Distribution("tensorflow-tpu", "2.20.0"), tf_install.Distribution("tensorflow", "2.21.0")
    several = tf_install.problem([cpu, tpu])
    assert "2 TensorFlow distributions are installed (tensorflow 2.21.0, tensorflow-tpu 2.20.0)" in several
    assert "pip uninstall -y tensorflow tensorflow-tpu && pip install tensorflow-tpu==2.20.0" in several
    assert "\n" not in several and tf_install.problem([tpu]) is None
    assert "efficientnet_tpu[cpu]" in tf_install.missing_message() and "[tpu]" in tf_install.missing_message()
    old = tf_install.unsupported_message(tf_install.Distribution("tensorflow", "2.16.1"))
    assert "outside the TensorFlow releases this package is tested on (2.20 to 2.21)" in old
    assert tf_install.unsupported_message(tpu) is None and tf_install.unsupported_message(cpu) is None
    assert tf_install.unsupported_message(tf_install.Distribution("tf-nightly", "2.22.0.dev1")) is not None
    with pytest.warns(tf_install.TensorFlowInstallWarning, match="2 TensorFlow distributions"):
        tf_install.warn_if_wrong([cpu, tpu])


def test_this_environment_has_exactly_one():
    assert tf_install.problem() is None, tf_install.problem()


NO_TF_PROBE = r"""
import importlib.util, sys
sys.path.insert(0, sys.argv[1])
import efficientnet_tpu
assert importlib.util.find_spec("tensorflow") is None  # probes by other libraries still see "absent"
try:
    import tensorflow
except ModuleNotFoundError as error:
    assert error.name == "tensorflow"
    print(error)
"""


def test_without_tensorflow_the_import_says_how_to_install_it(tmp_path):
    venv.create(str(tmp_path / "bare"), with_pip=False)  # a Python with no TensorFlow (nor anything else)
    python = str(tmp_path / "bare" / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([python, "-c", NO_TF_PROBE, ROOT], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == tf_install.missing_message() and done.stderr == ""


# Real start-up lines, copied from `python -c "import tensorflow as tf; tf.config.list_physical_devices()"`
# on this CPU machine with each release.
TF_2_21 = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796158315.533253   19949 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796158315.533584   19949 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796158315.578195   19949 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796158318.935602   19949 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
TF_2_20 = """\
2026-12-01 20:51:49.910469: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
2026-12-01 20:51:49.915229: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
2026-12-01 20:51:50.177137: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
2026-12-01 20:51:54.074223: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
REAL_ERRORS = ("2026-12-01 20:51:54.074223: E tensorflow/core/framework/op_kernel.cc:1830] OP_REQUIRES failed\n"
               "E0000 00:00:1796158318.935602   19949 other.cc:1] a real error\n")


@pytest.mark.parametrize("start_up", [TF_2_21, TF_2_20], ids=["tf2.21", "tf2.20"])
def test_start_up_lines_of_both_releases_are_dropped_and_real_errors_kept(start_up):
    assert filter_noise(start_up) == ""
    assert filter_noise(start_up + REAL_ERRORS) == REAL_ERRORS
