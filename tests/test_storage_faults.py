"""Storage faults are one line with exit 2, checked before training where they can be (issue 15, items 4, 6).

No space, a read-only or forbidden folder, a path that is (or is under) a
regular file: for --model_dir, --export_dir and --study_dir, one ``error:``
line naming the path and what to do. The faults are injected where the test
cannot make them (root ignores permissions); a full disk is also made for real
with a 2 MB tmpfs when this test runs as root and may mount.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
import tensorflow as tf

from efficientnet_tpu import storage, train

TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=2", "--checkpoint_every_steps=2", "--precision=float32",
        "--learning_rate=0.01", "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none",
        "--mode=train", "--train_steps=2"]


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


class FailingGFile:
    """tf.io.gfile with writes failing as the OS would (``errno``)."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __getattr__(self, name):
        return getattr(tf.io.gfile, name)

    def GFile(self, path, mode="r"):  # noqa: N802 (tf.io.gfile's name)
        if "w" in mode:
            raise OSError(self.number, os.strerror(self.number), path)
        return tf.io.gfile.GFile(path, mode)


@pytest.mark.parametrize("number, meaning", [(errno.ENOSPC, "no space left on the device"),
                                             (errno.EROFS, "the file system is read-only"),
                                             (errno.EACCES, "permission denied")])
def test_an_unwritable_model_dir_is_found_before_training(tmp_path, capsys, monkeypatch, number, meaning):
    monkeypatch.setattr(storage, "_gfile", lambda: FailingGFile(number))
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
    line = one_error(capsys)
    assert line.startswith(f"error: cannot write --model_dir {model_dir}: {meaning}; ")
    assert not (model_dir / "config.yaml").exists()


def test_tensorflow_errors_are_read_as_storage_faults():
    full = tf.errors.ResourceExhaustedError(None, None, "{{function_node __wrapped__SaveV2}} ... No space left on "
                                                        "device [Op:SaveV2]")
    fault = storage.storage_fault(full, "/m", "the checkpoint to")
    assert str(fault) == ("cannot write the checkpoint to /m: no space left on the device; free space there or "
                          "choose another location")
    assert storage.fault_reason(tf.errors.PermissionDeniedError(None, None, "x")) == "permission denied"
    assert "regular file" in storage.fault_reason(tf.errors.FailedPreconditionError(None, None,
                                                                                      "/a/b is not a directory"))
    assert storage.fault_reason(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")) is None


def test_a_full_disk_during_a_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    def full(self, *args, **kwargs):
        os.makedirs(os.path.join(self.directory, "ckpt-2_temp"), exist_ok=True)
        raise tf.errors.ResourceExhaustedError(None, None, "SaveV2: No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
    assert one_error(capsys) == (f"error: cannot write the checkpoint of step 2 to {model_dir}: no space left on "
                                 "the device; free space there or choose another location")
    assert not (model_dir / "ckpt-2_temp").exists() and not (model_dir / ".lock").exists()


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
def test_a_real_full_disk_is_one_line_and_leaves_no_temporaries(tmp_path, capsys):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode:
        pytest.skip("mount is not permitted here")
    try:
        model_dir = mount / "run"  # the ConvNet baseline's checkpoint (2.7 MB) does not fit in 1 MB
        assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
        line = one_error(capsys)
        assert f"{model_dir}: no space left on the device" in line
        assert not any(name.endswith("_temp") for name in os.listdir(model_dir))
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_model_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert train.main_cli(["train", *TINY, f"--model_dir={path}"]) == 2
    assert f"is the regular file {path}" in one_error(capsys)


def test_an_export_dir_that_is_a_file_is_found_before_training(tmp_path, capsys):
    export = tmp_path / "export"
    export.write_text("x")
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}", f"--export_dir={export}"]) == 2
    assert f"--export_dir {export} is the regular file {export}" in one_error(capsys)
    assert not any(name.startswith("ckpt-") for name in os.listdir(model_dir))  # nothing trained


@pytest.mark.parametrize("fault", ["file", "read-only"])
def test_an_unwritable_study_dir_is_one_line(tmp_path, capsys, monkeypatch, fault):
    from efficientnet_tpu import study

    study_dir = tmp_path / "study"
    if fault == "file":
        study_dir.write_text("x")
    else:
        monkeypatch.setattr(storage, "_gfile", lambda: FailingGFile(errno.EROFS))
    args = ["study", "--study=se_placement", "--profile=smoke", f"--study_dir={study_dir}", "--measure_speed=false"]
    assert study.main_cli(args) == 2
    line = one_error(capsys)
    expected = f"is the regular file {study_dir}" if fault == "file" else "the file system is read-only"
    assert f"--study_dir {study_dir}" in line and expected in line


def test_the_atomic_writer_leaves_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    storage.atomic_write(str(path), "old\n")
    real_replace = os.replace

    def crash(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        storage.atomic_write(str(path), "new\n")
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["config.yaml"]
    with pytest.raises(FileExistsError):
        storage.atomic_write(str(path), "other\n", overwrite=False)
    assert path.read_text() == "old\n"


def test_only_the_storage_module_renames_files_into_place():
    """The write-to-temporary-then-rename is written once (storage.atomic_write): a second copy elsewhere
    would miss its gs:// branch or its cleanup, as one did before."""
    import ast
    import pathlib

    package = pathlib.Path(storage.__file__).parent
    renames = {"replace", "rename", "Rename"}
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "storage.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in renames
                    and isinstance(node.func.value, (ast.Name, ast.Attribute))
                    and getattr(node.func.value, "id", getattr(node.func.value, "attr", "")) in ("os", "gfile")):
                offenders.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    assert not offenders, f"rename into place outside storage.py (use storage.atomic_write): {offenders}"
