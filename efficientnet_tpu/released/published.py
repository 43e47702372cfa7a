"""The authors' published ImageNet top-1 of each released checkpoint, and the input normalization it needs.

Sources (read at the commits the table was taken from):
- V1: tensorflow/tpu models/official/efficientnet/README.md, section 2, the table of checkpoints
  (baseline, AutoAugment, RandAugment, AdvProp + AA, NoisyStudent + RA).
- lite: tensorflow/tpu models/official/efficientnet/lite/README.md (FP32 accuracy column).
- V2: google/automl efficientnetv2/README.md, section 2 (ImageNet1K, ImageNet21K finetuned on 1K,
  and the V2-B0..B3 table).
AdvProp checkpoints take inputs scaled to [-1, 1] (tensorflow/tpu eval_ckpt_main.py,
`EvalCkptDriver.build_model`: features * 2 / 255 - 1); lite ones mean 127 / std 128
(lite/efficientnet_lite_builder.py MEAN_RGB / STDDEV_RGB); the rest the variant's own.
"""

from __future__ import annotations

import os

TPU_README = "tensorflow/tpu models/official/efficientnet/README.md"
LITE_README = "tensorflow/tpu models/official/efficientnet/lite/README.md"
V2_README = "google/automl efficientnetv2/README.md"

# method -> {variant: top-1 %}
PUBLISHED: dict[str, dict[str, float]] = {
    "baseline": {"b0": 76.7, "b1": 78.7, "b2": 79.8, "b3": 81.1, "b4": 82.5, "b5": 83.1},
    "autoaugment": {"b0": 77.1, "b1": 79.1, "b2": 80.1, "b3": 81.6, "b4": 82.9, "b5": 83.6, "b6": 84.0,
                    "b7": 84.3},
    "randaugment": {"b5": 83.7, "b7": 84.7},
    "advprop": {"b0": 77.6, "b1": 79.6, "b2": 80.5, "b3": 81.9, "b4": 83.3, "b5": 84.3, "b6": 84.8, "b7": 85.2},
    "noisystudent": {"b0": 78.8, "b1": 81.5, "b2": 82.4, "b3": 84.1, "b4": 85.3, "b5": 86.1, "b6": 86.4,
                     "b7": 86.9},
    "lite": {"lite0": 75.1, "lite1": 76.7, "lite2": 77.6, "lite3": 79.8, "lite4": 81.5},
    "imagenet1k": {"v2_s": 83.9, "v2_m": 85.2, "v2_l": 85.7, "v2_b0": 78.7, "v2_b1": 79.8, "v2_b2": 80.5,
                   "v2_b3": 82.1},
    "imagenet21k_ft1k": {"v2_s": 84.9, "v2_m": 86.2, "v2_l": 86.9},
}
SOURCES = {"lite": LITE_README, "imagenet1k": V2_README, "imagenet21k_ft1k": V2_README,
           "imagenet21k": V2_README}
METHODS = (*PUBLISHED, "imagenet21k")  # the 21k pretrained checkpoints have no ImageNet-1k number
# Inputs the weights were trained on: (mean, std) per channel on [0, 255] pixels.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0), (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)),
    "signed_unit": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),  # AdvProp: [-1, 1]
    "inception": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),  # lite
}


def source(method: str) -> str:
    return SOURCES.get(method, TPU_README)


def guess_method(path: str, variant: str) -> str:
    """The training method from the released file names (advprop/, noisy_student_..., randaug, ckptsaug...)."""
    if variant.startswith("lite"):
        return "lite"
    text = os.fspath(path).lower()
    if variant.startswith("v2_"):
        if "21k-ft1k" in text or "21k_ft1k" in text:
            return "imagenet21k_ft1k"
        return "imagenet21k" if "21k" in text else "imagenet1k"
    for key, method in (("advprop", "advprop"), ("noisy", "noisystudent"), ("randaug", "randaugment"),
                        ("ckptsaug", "autoaugment"), ("autoaug", "autoaugment")):
        if key in text:
            return method
    return "baseline"


def normalization_for(method: str, variant: str) -> str:
    """Which input normalization the weights of `method` need ("" = the variant's own)."""
    if method == "advprop":
        return "signed_unit"
    return ""


def published_top1(variant: str, method: str) -> tuple[float, str] | None:
    """(top-1 %, source) the authors published for this checkpoint, or None if they published none."""
    value = PUBLISHED.get(method, {}).get(variant)
    return None if value is None else (value, source(method))


def describe(variant: str, method: str, top1: float, top5: float) -> str:
    """One line: our top-1/top-5 beside the published top-1."""
    ours = f"top-1 {top1:.2%} top-5 {top5:.2%}"
    published = published_top1(variant, method)
    if published is None:
        return f"{ours}; the authors published no top-1 for {variant} ({method})"
    value, where = published
    return (f"{ours}; published {value:.1f}% for {variant} ({method}, {where}): "
            f"{100 * top1 - value:+.2f} points")


def markdown_table() -> str:
    """The table of docs/released_checkpoints.md: variant x method -> published top-1."""
    variants = sorted({v for table in PUBLISHED.values() for v in table},
                      key=lambda v: (v.startswith("v2"), v.startswith("lite"), v))
    lines = ["| variant | " + " | ".join(PUBLISHED) + " |", "|---|" + "---|" * len(PUBLISHED)]
    for v in variants:
        cells = [f"{PUBLISHED[m][v]:.1f}" if v in PUBLISHED[m] else "" for m in PUBLISHED]
        lines.append(f"| `{v}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
