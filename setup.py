"""Packaging for efficientnet_tpu.

TensorFlow comes from an extra, never from install_requires: its CPU/GPU build
(``tensorflow``) and its TPU build (``tensorflow-tpu``) are separate
distributions that write the same ``tensorflow/`` package, so a hard
``tensorflow`` requirement would install the CPU build over a TPU VM's TPU
build. Pick one (docs/tpu.md has the line per platform):

    pip install -e ".[cpu]"     CPU (and GPU with the GPU machine's CUDA libraries installed)
    pip install -e ".[gpu]"     GPU, with NVIDIA's CUDA and cuDNN wheels
    pip install -e ".[tpu]"     Cloud TPU VM / Colab TPU: tensorflow-tpu and the libtpu it was released with
    pip install -e .            TensorFlow already installed: keep it (no second one is added)

The recipes and study specs of the top-level ``configs/`` folder ship inside
the package as ``efficientnet_tpu/configs`` (see efficientnet_tpu/shipped.py).
"""

import glob
import os

from setuptools import find_packages, setup

# The TensorFlow releases the CI runs the test suite on: the oldest (also the
# newest TPU build) and the newest.
TENSORFLOW = "tensorflow>=2.20,<2.22"
# tensorflow-tpu 2.20.0 declares libtpu~=0.0.14, which lets pip take any newer
# 0.0.x libtpu; 0.0.14 is the one the TPU build names, so it is pinned exactly.
TENSORFLOW_TPU = ["tensorflow-tpu==2.20.0", "libtpu==0.0.14"]

# configs/ and every folder under it that holds YAML (studies/, progressive/, ...) ship as
# efficientnet_tpu.configs[.SUB], so an installed package finds its recipes and study specs.
CONFIG_PACKAGES = sorted({
    "efficientnet_tpu." + os.path.dirname(path).replace(os.sep, ".")
    for path in glob.glob(os.path.join("configs", "**", "*.yaml"), recursive=True)
} | {"efficientnet_tpu.configs"})

setup(
    name="efficientnet_tpu",
    version="0.1.0",
    description=(
        "EfficientNet, its research variants and EfficientNetV2 in Keras 3, "
        "trained with one distributed loop on TPU, GPU and CPU, exported for serving."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["efficientnet_tpu", "efficientnet_tpu.*"]) + CONFIG_PACKAGES,
    package_dir={"efficientnet_tpu.configs": "configs"},
    package_data={package: ["*.yaml"] for package in CONFIG_PACKAGES},
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9",
        "absl-py>=1.0",
        "pyyaml>=6.0",
        "numpy",
        "pillow",
    ],
    extras_require={
        # One TensorFlow, exactly one of these three (or none when one is installed already).
        "cpu": [TENSORFLOW],
        "gpu": [TENSORFLOW.replace("tensorflow", "tensorflow[and-cuda]", 1)],
        "tpu": TENSORFLOW_TPU,
        # Legacy TPU Nodes (a TPU reached over gRPC): reads and switches the node's runtime version.
        "tpu-node": ["cloud-tpu-client>=0.10"],
        "digits": ["scikit-learn>=1.0"],
        "jax": ["jax>=0.4"],
        # studies: report tables (tabulate), figures (matplotlib) and TensorBoard HParams summaries.
        "studies": ["matplotlib>=3.5", "tabulate>=0.9", "tensorboard>=2.16"],
        # jax: the model-package test runs the same weights on Keras' JAX backend;
        # nbclient, nbformat, ipykernel: the Colab notebook is executed by a real kernel.
        "test": ["pytest>=7", "scikit-learn>=1.0", "jax>=0.4", "nbclient>=0.10", "nbformat>=5.9",
                 "ipykernel>=6", "matplotlib>=3.5", "tabulate>=0.9", "tensorboard>=2.16"],
    },
)
