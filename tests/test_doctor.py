"""python -m efficientnet_tpu.doctor: each check's verdict and fix on stand-in TPU, GPU and broken machines,
and the real command on this CPU machine (exit 0, quiet start-up)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from efficientnet_tpu import tf_install
from efficientnet_tpu.cli import doctor

from helpers import subprocess_env

TF = tf_install.Distribution("tensorflow", "2.21.0")
TF_TPU = tf_install.Distribution("tensorflow-tpu", "2.20.0")
CPU_FACTS = doctor.TensorFlowFacts(version="2.21.0", location="/site/tensorflow", cuda_build=True, cuda="12.5.1")


def machine(*, tensorflows=(TF,), facts=CPU_FACTS, versions=None, tpu_devices=(), nvidia=(), environ=None,
            keras=("3.15.1", "tensorflow"), prepared=(), write_error=None, written=None) -> doctor.Machine:
    """A stand-in machine: every fact the doctor reads, given here."""
    versions = dict(versions or {})

    def write_probe(path):
        if write_error is not None:
            raise write_error
        if written is not None:
            written.append(path)

    return doctor.Machine(
        environ=environ or {}, tensorflows=lambda: list(tensorflows), version_of=versions.get,
        import_tensorflow=lambda: facts, keras=lambda: keras, tpu_devices=lambda: list(tpu_devices),
        nvidia_devices=lambda: list(nvidia), tfds_prepared=lambda name, data_dir: name in prepared,
        tfds_default_dir=lambda: "/home/u/tensorflow_datasets",
        write_probe=write_probe, recipes=lambda: {"cifar10": ["cifar10"], "imagenet2012": ["imagenet"]})


def by_name(checks):
    return {c.name: c for c in checks}


def test_a_cpu_laptop_is_ready(tmp_path):
    written = []
    checks = doctor.run_checks(machine(written=written), model_dir=str(tmp_path))
    got = by_name(checks)
    assert got["TensorFlow"].status == "ok" and "tensorflow 2.21.0" in got["TensorFlow"].detail
    assert got["TPU"].status == "info" and got["GPU"].status == "info" and got["libtpu"].status == "info"
    assert got["model_dir"].status == "ok" and written == [str(tmp_path)]
    assert got["TFDS"].status == "info" and "tfds build cifar10" in got["TFDS"].fix  # missing data: how to
    assert doctor.render(checks).splitlines()[-1] == "ready"


def test_tpu_vm_with_the_tpu_build_and_its_libtpu():
    m = machine(tensorflows=(TF_TPU,), versions={"libtpu": "0.0.14"},
                tpu_devices=["/dev/accel0", "/dev/accel1", "/dev/accel2", "/dev/accel3"],
                facts=dataclasses.replace(CPU_FACTS, version="2.20.0", cuda_build=False, cuda=""))
    got = by_name(doctor.run_checks(m))
    assert got["TPU"].status == "ok" and "--tpu=auto uses local" in got["TPU"].detail
    assert got["libtpu"].status == "ok" and "0.0.14" in got["libtpu"].detail
    assert got["TensorFlow"].status == "ok"


def test_tpu_vm_with_the_cpu_build_fails_with_the_tpu_install_line():
    got = by_name(doctor.run_checks(machine(tpu_devices=["/dev/vfio/0"])))
    assert got["TPU"].status == "FAIL" and "not the TPU build" in got["TPU"].detail
    assert "pip uninstall -y tensorflow" in got["TPU"].fix and "efficientnet_tpu[tpu]" in got["TPU"].fix


@pytest.mark.parametrize("libtpu, status", [(None, "FAIL"), ("0.0.52", "FAIL"), ("0.0.14", "ok")])
def test_libtpu_must_be_the_one_the_tpu_build_was_released_with(libtpu, status):
    versions = {"libtpu": libtpu} if libtpu else {}
    check = doctor.check_libtpu(machine(versions=versions), [TF_TPU])
    assert check.status == status
    if status == "FAIL":
        assert "libtpu==0.0.14" in check.fix


def test_two_tensorflows_fail_with_the_uninstall_line():
    got = by_name(doctor.run_checks(machine(tensorflows=(TF, TF_TPU), tpu_devices=["/dev/accel0"])))
    tf = got["TensorFlow"]
    assert tf.status == "FAIL" and "tensorflow 2.21.0, tensorflow-tpu 2.20.0" in tf.detail
    assert "pip uninstall -y tensorflow tensorflow-tpu" in tf.fix and "tensorflow-tpu==2.20.0" in tf.fix
    assert got["TPU"].status == "ok"  # the TPU build is there; the clash is reported once, above


def test_no_tensorflow_fails_with_the_install_line_and_skips_what_needs_it():
    m = machine(tensorflows=(), facts=doctor.TensorFlowFacts())
    checks = doctor.run_checks(dataclasses.replace(m), model_dir="gs://bucket/run")
    got = by_name(checks)
    if got["TensorFlow"].status == "ok":  # this machine's own TensorFlow has no metadata stand-in here
        pytest.skip("tensorflow importable without metadata")
    assert got["TensorFlow"].status == "FAIL" and "efficientnet_tpu[cpu]" in got["TensorFlow"].fix
    assert got["Keras"].status == got["TFDS"].status == got["model_dir"].status == "info"
    assert doctor.render(checks).splitlines()[-1].startswith("not ready: fix TensorFlow")


def test_an_untested_tensorflow_release_fails():
    old = tf_install.Distribution("tensorflow", "2.16.1")
    check = doctor.check_tensorflow(machine(), [old], dataclasses.replace(CPU_FACTS, version="2.16.1"))
    assert check.status == "FAIL" and "2.20 to 2.21" in check.detail and "efficientnet_tpu[cpu]" in check.fix


def test_keras_on_another_backend_fails():
    got = by_name(doctor.run_checks(machine(keras=("3.15.1", "jax"))))
    assert got["Keras"].status == "FAIL" and "KERAS_BACKEND=tensorflow" in got["Keras"].fix


@pytest.mark.parametrize("facts, fix", [
    (dataclasses.replace(CPU_FACTS, cuda_build=False, cuda=""), "efficientnet_tpu[gpu]"),
    (CPU_FACTS, "nvidia-smi"),
])
def test_a_gpu_tensorflow_cannot_see_fails(facts, fix):
    check = doctor.check_gpu(machine(nvidia=["/dev/nvidia0"], facts=facts), facts)
    assert check.status == "FAIL" and fix in check.fix


def test_visible_gpus_are_ok():
    facts = dataclasses.replace(CPU_FACTS, gpus=("/physical_device:GPU:0", "/physical_device:GPU:1"), cudnn="9")
    check = doctor.check_gpu(machine(nvidia=["/dev/nvidia0", "/dev/nvidia1"], facts=facts), facts)
    assert check.status == "ok" and check.detail.startswith("2 visible")


def test_tpu_node_needs_cloud_tpu_client_and_a_gs_model_dir():
    m = machine(environ={"COLAB_TPU_ADDR": "10.0.0.2:8470"})
    got = by_name(doctor.run_checks(m, model_dir="/tmp/local_run"))
    assert "grpc://10.0.0.2:8470" in got["TPU"].detail
    assert got["model_dir"].status == "FAIL" and "gs://" in got["model_dir"].fix


def test_unwritable_model_dir_fails_with_a_fix():
    m = machine(write_error=PermissionError("403 does not have storage.objects.create access"))
    check = by_name(doctor.run_checks(m, model_dir="gs://bucket/run"))["model_dir"]
    assert check.status == "FAIL" and "storage.objects.create" in check.detail
    assert "roles/storage.objectAdmin" in check.fix


def test_prepared_datasets_are_listed():
    check = doctor.check_tfds(machine(prepared=("cifar10", "imagenet2012")), None, CPU_FACTS)
    assert check.status == "ok" and "prepared: cifar10, imagenet2012" in check.detail


def test_the_real_write_probe_leaves_nothing_behind(tmp_path):
    pytest.importorskip("tensorflow")
    target = tmp_path / "new" / "run"
    doctor._write_probe(str(target))  # pylint: disable=protected-access
    assert not target.exists()  # created for the probe, removed again
    (tmp_path / "kept").mkdir()
    doctor._write_probe(str(tmp_path / "kept"))  # pylint: disable=protected-access
    assert list((tmp_path / "kept").iterdir()) == []
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(Exception):
        doctor._write_probe(str(blocker / "run"))  # pylint: disable=protected-access


def test_doctor_command_on_this_machine(tmp_path):
    env = subprocess_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # importing TensorFlow in this process set it to 1 (show INFO logs)
    done = subprocess.run([sys.executable, "-m", "efficientnet_tpu.doctor", f"--model_dir={tmp_path / 'run'}",
                           f"--data_dir={tmp_path}"], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1] if not line.startswith(" ")] == [
        "Python", "TensorFlow", "Keras", "libtpu", "TPU", "GPU", "TFDS", "model_dir"]
    assert lines[-1] == "ready" and done.stderr == ""  # quiet start-up: no TensorFlow chatter
    bad = subprocess.run([sys.executable, "-m", "efficientnet_tpu.doctor", "--nope"], capture_output=True,
                         text=True, env=subprocess_env(), timeout=120, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unrecognized arguments: --nope")
