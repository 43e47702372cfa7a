"""No run destroys checkpoints it did not write (issue 15, item 1).

A damaged, empty or missing ``checkpoint`` index must not make a rerun start
from step 0 and save over intact ``ckpt-N`` files: the newest readable one is
found by listing and restored, with a note. A model_dir whose checkpoints
cannot be read at all is refused (exit 2, naming them). A ``ckpt-N_temp``
folder left by a save killed half-way is removed on the next start.
Runs are the ConvNet baseline on 16-pixel digits, a few steps, in this process.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from efficientnet_tpu import train

TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=2", "--checkpoint_every_steps=2", "--precision=float32",
        "--learning_rate=0.01", "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none",
        "--mode=train"]


def run(model_dir, steps: int) -> int:
    return train.main_cli(["train", *TINY, f"--train_steps={steps}", f"--model_dir={model_dir}"])


def digests(model_dir) -> dict[str, str]:
    return {name: hashlib.sha256(open(os.path.join(model_dir, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(model_dir)) if name.startswith("ckpt-")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model_dir trained to step 4 (ckpt-2 and ckpt-4)."""
    model_dir = tmp_path_factory.mktemp("trained") / "run"
    assert run(model_dir, 4) == 0
    return model_dir


@pytest.mark.parametrize("damage", ["garbage", "empty", "missing"])
def test_a_damaged_index_resumes_from_the_newest_listed_checkpoint(trained, tmp_path, capsys, damage):
    model_dir = tmp_path / "run"
    shutil.copytree(trained, model_dir)
    before = digests(model_dir)
    index = model_dir / "checkpoint"
    if damage == "garbage":
        index.write_text("garbage }{\n")
    elif damage == "empty":
        index.write_text("")
    else:
        index.unlink()
    capsys.readouterr()
    assert run(model_dir, 6) == 0
    out = capsys.readouterr().out
    assert f"the checkpoint index {index} is" in out and "found 2 checkpoint(s) by listing" in out
    assert f"restored {model_dir}/ckpt-4 (step 4)" in out and "resuming at step 4" in out
    assert "from scratch" not in out
    after = digests(model_dir)
    # The old checkpoints are untouched, the run went on to step 6, and the index lists them all.
    assert {name: after[name] for name in before} == before
    assert "ckpt-6.index" in after
    text = index.read_text()
    assert 'model_checkpoint_path: "ckpt-6"' in text and '"ckpt-4"' in text and '"ckpt-2"' in text


def test_unreadable_checkpoints_are_refused_naming_them(trained, tmp_path, capsys):
    model_dir = tmp_path / "run"
    shutil.copytree(trained, model_dir)
    (model_dir / "checkpoint").write_text("garbage }{\n")
    for name in os.listdir(model_dir):
        if name.startswith("ckpt-"):
            (model_dir / name).write_bytes(b"\0" * 16)  # every checkpoint file corrupt
    before = digests(model_dir)
    capsys.readouterr()
    assert run(model_dir, 6) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no checkpoint in")
    assert "ckpt-4, ckpt-2" in err[0] and "nothing was overwritten" in err[0]
    assert digests(model_dir) == before  # nothing saved over them


def test_an_index_naming_missing_files_falls_back_to_listing(trained, tmp_path, capsys):
    model_dir = tmp_path / "run"
    shutil.copytree(trained, model_dir)
    (model_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-8"\nall_model_checkpoint_paths: "ckpt-8"\n')
    capsys.readouterr()
    assert run(model_dir, 6) == 0
    out = capsys.readouterr().out
    assert "names ckpt-8, whose files are missing" in out and "resuming at step 4" in out


def test_half_written_checkpoint_temporaries_are_removed_on_the_next_start(trained, tmp_path, capsys):
    model_dir = tmp_path / "run"
    shutil.copytree(trained, model_dir)
    temp = model_dir / "ckpt-6_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    capsys.readouterr()
    assert run(model_dir, 6) == 0
    out = capsys.readouterr().out
    assert f"note: removed {temp}" in out and not temp.exists()
    assert "resuming at step 4" in out and (model_dir / "ckpt-6.index").exists()


def test_an_unreadable_index_without_checkpoints_starts_fresh(tmp_path, capsys):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "checkpoint").write_text("")
    assert run(model_dir, 2) == 0
    out = capsys.readouterr().out
    assert "removed the unreadable checkpoint index" in out and "from scratch" in out
