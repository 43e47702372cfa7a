"""The released-checkpoint docs carry the published table the eval line reads, and spot checks of it
against the authors' READMEs (numbers copied from them, each cited)."""

from __future__ import annotations

import os

from efficientnet_tpu.released import published

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_docs_page_holds_the_table():
    with open(os.path.join(REPO, "docs", "released_checkpoints.md"), encoding="utf-8") as f:
        assert published.markdown_table() in f.read()


def test_published_numbers_spot_checked_against_the_readmes():
    # tensorflow/tpu models/official/efficientnet/README.md, section 2.
    assert published.published_top1("b0", "baseline")[0] == 76.7
    assert published.published_top1("b7", "advprop")[0] == 85.2
    assert published.published_top1("b7", "noisystudent")[0] == 86.9
    assert published.published_top1("b5", "randaugment")[0] == 83.7
    assert published.published_top1("b0", "randaugment") is None  # none published
    # tensorflow/tpu lite/README.md, FP32 accuracy.
    assert published.published_top1("lite4", "lite") == (81.5, published.LITE_README)
    # google/automl efficientnetv2/README.md, section 2.
    assert published.published_top1("v2_s", "imagenet1k")[0] == 83.9
    assert published.published_top1("v2_l", "imagenet21k_ft1k")[0] == 86.9


def test_method_and_normalization_from_the_released_paths():
    guess = published.guess_method
    assert guess("gs://cloud-tpu-checkpoints/efficientnet/advprop/efficientnet-b3", "b3") == "advprop"
    assert guess("noisy_student_efficientnet-b0", "b0") == "noisystudent"
    assert guess("efficientnet-b7-randaug", "b7") == "randaugment"
    assert guess("ckptsaug/efficientnet-b2", "b2") == "autoaugment"
    assert guess("ckpts/efficientnet-b2", "b2") == "baseline"
    assert guess("efficientnetv2-s-21k-ft1k", "v2_s") == "imagenet21k_ft1k"
    assert guess("efficientnetv2-s-21k", "v2_s") == "imagenet21k"
    assert guess("efficientnet-lite2", "lite2") == "lite"
    assert published.normalization_for("advprop", "b0") == "signed_unit"
    # tensorflow/tpu eval_ckpt_main.py EvalCkptDriver.build_model: features * 2 / 255 - 1.
    mean, std = published.NORMALIZATIONS["signed_unit"]
    assert all((255.0 - m) / s == 1.0 and (0.0 - m) / s == -1.0 for m, s in zip(mean, std))


def test_the_eval_line_puts_ours_beside_the_published_number():
    line = published.describe("b0", "noisystudent", 0.7812, 0.9401)
    assert line.startswith("top-1 78.12% top-5 94.01%; published 78.8% for b0 (noisystudent, ")
    assert line.endswith("-0.68 points")
