"""Full-size check of load_released_checkpoint (the BENCHMARKS.md entry): ours vs Keras Applications.

A checkpoint in the authors' layout (random weights, perturbed batch-norm statistics, EMA shadows
different from the raw values, a 1000-class head) is written for each variant at its own resolution,
loaded into our model by `load_released_checkpoint` and into Keras Applications' EfficientNet by the
mapping of Keras' own converter (tests/reference_checkpoints.py); both classify scikit-learn's two
sample photographs (china.jpg, flower.jpg) preprocessed by our eval transform.

    python scripts/released_equality.py b0 b3
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str]) -> int:
    sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
    import keras
    import numpy as np
    from sklearn.datasets import load_sample_images

    import efficientnet_tpu
    import reference_checkpoints as rc
    from efficientnet_tpu.data import preprocess_for_eval

    photos = load_sample_images().images
    for variant in argv or ["b0", "b3"]:
        start = time.perf_counter()
        spec = efficientnet_tpu.get_spec(variant)
        size = spec.resolution
        images = np.stack([np.asarray(preprocess_for_eval(p, size, spec.eval_crop_fraction)) for p in photos])
        twin = getattr(keras.applications, f"EfficientNet{variant.upper()}")(
            weights=None, input_shape=(size, size, 3), classifier_activation=None)
        scope = f"efficientnet-{variant}"
        values = rc.reference_variables(twin, scope, seed=11)
        ours = efficientnet_tpu.build_model(variant)
        with tempfile.TemporaryDirectory() as directory:
            rc.write_checkpoint(directory, values)
            for use_ema in (True, False):
                report = efficientnet_tpu.load_released_checkpoint(ours, directory, use_ema=use_ema)
                rc.load_into_keras(twin, values, scope, use_ema=use_ema)
                mine = np.asarray(ours(images, training=False))
                theirs = np.asarray(twin(images, training=False))
                print(f"{variant} {size}px {'EMA' if use_ema else 'raw'}: {report.num_loaded} variables, "
                      f"max |logit diff| {np.abs(mine - theirs).max():.2e} (logits up to {np.abs(theirs).max():.2f}), "
                      f"same top-1 {bool((mine.argmax(1) == theirs.argmax(1)).all())}")
        print(f"{variant}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
