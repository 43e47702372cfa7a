"""Packaging for efficientnet_tpu."""

from setuptools import find_packages, setup

setup(
    name="efficientnet_tpu",
    version="0.1.0",
    description=(
        "EfficientNet, its research variants and EfficientNetV2 in Keras 3, "
        "trained with one distributed loop on TPU, GPU and CPU, exported for serving."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["efficientnet_tpu", "efficientnet_tpu.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<4",
        "tensorflow-datasets>=4.9",
        "absl-py>=1.0",
        "pyyaml>=6.0",
        "numpy",
        "pillow",
    ],
    extras_require={
        "tpu": ["cloud-tpu-client>=0.10"],
        "digits": ["scikit-learn>=1.0"],
        "jax": ["jax>=0.4"],
        # studies: report tables (tabulate), figures (matplotlib) and TensorBoard HParams summaries.
        "studies": ["matplotlib>=3.5", "tabulate>=0.9", "tensorboard>=2.16"],
        # jax: the model-package test runs the same weights on Keras' JAX backend;
        # nbclient, nbformat, ipykernel: the Colab notebook is executed by a real kernel.
        "test": ["pytest>=7", "scikit-learn>=1.0", "jax>=0.4", "nbclient>=0.10", "nbformat>=5.9",
                 "ipykernel>=6", "matplotlib>=3.5", "tabulate>=0.9", "tensorboard>=2.16"],
    },
    include_package_data=True,
)
