"""Finding the TPU (``--tpu=auto``) and matching a remote TPU's runtime to the local TensorFlow.

Where a TPU user is, and what ``--tpu`` that needs:

* a Cloud TPU VM (the TPU chips are this machine's devices, ``/dev/accel*`` or
  ``/dev/vfio/*``; Colab's current TPU runtime is one): ``local``;
* Colab's older TPU runtime (a TPU node reached over the network, its address
  in ``COLAB_TPU_ADDR``): ``grpc://ADDRESS``;
* a TPU node named in ``TPU_NAME`` (GKE and Cloud TPU node setups): that name.

A TPU node (a name or a grpc address) runs its own TensorFlow runtime, which
must match the TensorFlow of the process that drives it. cloud-tpu-client
(``pip install efficientnet_tpu[tpu-node]``) reads that runtime version and can
switch it (``configure_tpu_version``); this module decides what to do, and
takes the client as an argument so the decisions are tested with a stand-in.
On a TPU VM the runtime is the installed libtpu and nothing is checked.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Callable, Mapping

from absl import logging

REMOTE_PREFIX = "grpc://"
NO_TPU_MESSAGE = (
    "--tpu=auto found no TPU: this machine has no TPU devices (/dev/accel*, /dev/vfio/*), and neither "
    "COLAB_TPU_ADDR (Colab's TPU runtime) nor TPU_NAME is set. On Colab choose Runtime > Change runtime type "
    "> TPU; on Cloud give --tpu=local on a TPU VM, or --tpu=NAME / --tpu=grpc://IP:8470 for a TPU node; "
    "without a TPU drop --tpu")


def _tpu_devices() -> list[str]:
    return glob.glob("/dev/accel*") + glob.glob("/dev/vfio/[0-9]*")


def detect_tpu(environ: Mapping[str, str] | None = None,
               devices: Callable[[], list[str]] | None = None) -> str | None:
    """The ``--tpu`` value for the TPU this process can reach, or None when there is none."""
    environ = os.environ if environ is None else environ
    devices = devices or _tpu_devices
    colab = environ.get("COLAB_TPU_ADDR", "").strip()
    if colab:
        return colab if colab.startswith(REMOTE_PREFIX) else REMOTE_PREFIX + colab
    name = environ.get("TPU_NAME", "").strip()
    if name:
        return name
    if devices():
        return "local"
    return None


def resolve_tpu(tpu: str, environ: Mapping[str, str] | None = None,
                devices: Callable[[], list[str]] | None = None) -> str:
    """``tpu`` itself, or for ``auto`` the detected TPU; a ValueError with the fix when there is none."""
    if tpu != "auto":
        return tpu
    found = detect_tpu(environ, devices)
    if found is None:
        raise ValueError(NO_TPU_MESSAGE)
    logging.info("--tpu=auto: using %s", found)
    return found


def is_remote(tpu: str) -> bool:
    """A TPU node (its own runtime, reached over the network), not the TPU VM's own chips."""
    return tpu not in ("", "local")


def major_minor(version: str) -> tuple[int, int] | None:
    """(2, 21) from '2.21.0', 'tpu-vm-tf-2.21.0' or '2.21.0-pjrt'; None for 'nightly' and the like."""
    match = re.search(r"(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def default_client_factory(tpu: str) -> Any:
    """cloud-tpu-client's Client for a TPU name or grpc address (imported only when needed)."""
    from cloud_tpu_client import Client  # pylint: disable=import-outside-toplevel

    return Client(tpu=tpu)


def check_runtime_version(tpu: str, tf_version: str, *, configure: bool = False,
                          client_factory: Callable[[str], Any] = default_client_factory) -> str:
    """Makes a remote TPU's runtime match ``tf_version`` or says why it cannot; returns what happened.

    Matching (same major.minor): nothing to do. Different and ``configure``:
    ``configure_tpu_version(tf_version, restart_type="ifNeeded")`` and wait
    until the TPU is healthy. Different and not ``configure``: a ValueError
    naming both fixes. Without cloud-tpu-client, or when the Cloud API cannot
    be asked (credentials, a bare grpc address), the version is not checked:
    a warning unless ``configure`` was asked, which then fails clearly.
    """
    if not is_remote(tpu):
        return "TPU VM: the runtime is this machine's libtpu"
    try:
        client = client_factory(tpu)
        runtime = client.runtime_version()
    except ImportError:
        message = ("cannot check the TPU runtime version: cloud-tpu-client is not installed "
                   "(pip install 'efficientnet_tpu[tpu-node]')")
        if configure:
            raise ValueError(f"--tpu_configure_version needs cloud-tpu-client: {message}") from None
        logging.warning("%s; if the TPU runs another TensorFlow, connecting will fail", message)
        return f"not checked ({message})"
    except Exception as e:  # pylint: disable=broad-except  # the Cloud API's many errors
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        if configure:
            raise ValueError(f"--tpu_configure_version: cannot ask the Cloud TPU API about {tpu}: {reason}") from None
        logging.warning("Cannot read the runtime version of TPU %s (%s); not checked.", tpu, reason)
        return f"not checked ({reason})"
    wanted, have = major_minor(tf_version), major_minor(runtime)
    if wanted is not None and wanted == have:
        return f"TPU runtime {runtime} matches TensorFlow {tf_version}"
    if not configure:
        raise ValueError(
            f"TPU {tpu} runs TensorFlow runtime {runtime}, this process TensorFlow {tf_version}: add "
            f"--tpu_configure_version to switch the TPU to {tf_version} (restarts it), or install the "
            f"TensorFlow that matches {runtime}")
    client.configure_tpu_version(tf_version, restart_type="ifNeeded")
    client.wait_for_healthy()
    return f"TPU runtime switched from {runtime} to {tf_version}"
