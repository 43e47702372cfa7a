"""--tpu=auto and the TPU runtime-version check, decided with stand-ins (no TPU, no Cloud access here)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from efficientnet_tpu.training import tpu as tpu_lib  # noqa: E402


def no_devices() -> list[str]:
    return []


@pytest.mark.parametrize("environ, devices, expected", [
    ({}, ["/dev/accel0"], "local"),                                  # a Cloud TPU VM (v2-v4)
    ({}, ["/dev/vfio/0"], "local"),                                  # a TPU VM of the newer generations
    ({"COLAB_TPU_ADDR": "10.0.0.2:8470"}, [], "grpc://10.0.0.2:8470"),  # Colab's TPU-node runtime
    ({"COLAB_TPU_ADDR": "grpc://10.0.0.2:8470"}, [], "grpc://10.0.0.2:8470"),
    ({"TPU_NAME": "my-tpu"}, [], "my-tpu"),                          # a named TPU node
    ({"TPU_NAME": "my-tpu"}, ["/dev/accel0"], "my-tpu"),             # the name given wins
    ({}, [], None),
])
def test_detect_tpu(environ, devices, expected):
    assert tpu_lib.detect_tpu(environ, lambda: devices) == expected


def test_auto_without_a_tpu_is_one_clear_error():
    with pytest.raises(ValueError, match="--tpu=auto found no TPU.*Runtime > Change runtime type > TPU"):
        tpu_lib.resolve_tpu("auto", {}, no_devices)
    assert tpu_lib.resolve_tpu("my-tpu", {}, no_devices) == "my-tpu"  # explicit values pass through


class StandInClient:
    """Records what cloud-tpu-client's Client would be asked."""

    def __init__(self, runtime: str, error: Exception | None = None) -> None:
        self.runtime, self.error, self.calls = runtime, error, []

    def runtime_version(self) -> str:
        if self.error is not None:
            raise self.error
        return self.runtime

    def configure_tpu_version(self, version: str, restart_type: str = "always") -> None:
        self.calls.append(("configure_tpu_version", version, restart_type))

    def wait_for_healthy(self) -> None:
        self.calls.append(("wait_for_healthy",))


def factory_of(client):
    seen = []

    def factory(tpu):
        seen.append(tpu)
        return client
    return factory, seen


@pytest.mark.parametrize("runtime", ["2.21.0", "tpu-vm-tf-2.21.1", "2.21.0-pjrt"])
def test_a_matching_runtime_is_left_alone(runtime):
    client = StandInClient(runtime)
    factory, seen = factory_of(client)
    message = tpu_lib.check_runtime_version("my-tpu", "2.21.0", configure=True, client_factory=factory)
    assert "matches" in message and client.calls == [] and seen == ["my-tpu"]


def test_a_different_runtime_is_configured_when_asked_and_an_error_otherwise():
    client = StandInClient("2.12.0")
    factory, _ = factory_of(client)
    with pytest.raises(ValueError, match="runs TensorFlow runtime 2.12.0.*--tpu_configure_version"):
        tpu_lib.check_runtime_version("grpc://10.0.0.2:8470", "2.21.0", client_factory=factory)
    assert client.calls == []
    message = tpu_lib.check_runtime_version("grpc://10.0.0.2:8470", "2.21.0", configure=True,
                                            client_factory=factory)
    assert message == "TPU runtime switched from 2.12.0 to 2.21.0"
    assert client.calls == [("configure_tpu_version", "2.21.0", "ifNeeded"), ("wait_for_healthy",)]
    nightly = StandInClient("nightly")
    with pytest.raises(ValueError, match="nightly"):
        tpu_lib.check_runtime_version("my-tpu", "2.21.0", client_factory=factory_of(nightly)[0])


def test_a_tpu_vm_is_never_asked():
    def factory(_):
        raise AssertionError("a TPU VM has no runtime to ask about")
    assert "libtpu" in tpu_lib.check_runtime_version("local", "2.21.0", configure=True, client_factory=factory)


@pytest.mark.parametrize("error", [ImportError("No module named 'cloud_tpu_client'"),
                                   RuntimeError("could not find default credentials")])
def test_without_the_client_or_the_api_the_check_is_skipped_unless_configuring(error):
    def factory(_):
        if isinstance(error, ImportError):
            raise error
        return StandInClient("", error)

    assert tpu_lib.check_runtime_version("my-tpu", "2.21.0", client_factory=factory).startswith("not checked")
    with pytest.raises(ValueError, match="--tpu_configure_version"):
        tpu_lib.check_runtime_version("my-tpu", "2.21.0", configure=True, client_factory=factory)


def test_train_cli_with_tpu_auto_and_no_tpu(tmp_path, capsys, monkeypatch):
    """Through the command line: one error line, status 2, nothing trained."""
    from efficientnet_tpu.train import main_cli

    for name in ("COLAB_TPU_ADDR", "TPU_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tpu_lib, "_tpu_devices", no_devices)
    status = main_cli(["train", f"--model_dir={tmp_path / 'run'}", "--dataset=digits",
                       "--variant=baseline_convnet", "--train_steps=1", "--tpu=auto"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --tpu=auto found no TPU") and err.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoint").exists()
