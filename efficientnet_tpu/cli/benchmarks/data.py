"""Throughput of the training input pipeline against this machine's ceiling.

    python -m efficientnet_tpu.benchmarks.data [--num_images=256] [--image_size=224]
        [--batch_size=64] [--steps=20] [--rounds=3] [--work_dir=DIR]
        [--policies=autoaugment,randaugment] [--randaugment_magnitude=10]

Writes ImageNet-sized JPEGs (500x375, shapes over gradients plus sensor-like
noise) into a class-folder layout, then measures in the same process, in
alternating rounds (see `timing`):
  pipeline:      build_dataset('folder', 'train', ...): shuffled file reads,
                 random crop fused with JPEG decoding, bicubic resize, flip,
                 batch, prefetch (crop + flip, augment 'default');
  POLICY/SEMANTICS: the same pipeline with AutoAugment (policy v0) or
                 RandAugment (2 layers) after the crop, with the reference
                 code's operations or the paper's (--policies; empty: none);
  decode+resize: the bare ceiling: read, decode the whole JPEG, resize, batch
                 in a parallel tf.data map;
  crop+resize:   the same bare map doing the pipeline's own fused crop-decode,
                 which isolates the cost of everything else in the pipeline.
Rates are images per second and images per CPU-second of this process; the
pipeline's share of a bare rate is the median of same-round ratios, and so
are each augmented pipeline's share of crop + flip and the reference
semantics' share of the paper semantics.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Callable, Sequence

import numpy as np
from absl import flags

from efficientnet_tpu.cli import common
from efficientnet_tpu.benchmarks.timing import Stopwatch, Timing, alternating_rounds, machine_description, \
    median, speedups

CANDIDATES = ("pipeline", "decode+resize", "crop+resize")
POLICIES = ("autoaugment", "randaugment")
SEMANTICS = ("reference", "paper")


def write_jpegs(directory: str, num_images: int, *, width: int = 500, height: int = 375,
                num_classes: int = 4, seed: int = 0) -> list[str]:
    """Photograph-like JPEGs in directory/train/<class>/; returns their paths."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    cols = np.linspace(0.0, 1.0, width)[None, :, None]
    paths = []
    for index in range(num_images):
        class_dir = os.path.join(directory, "train", f"class_{index % num_classes}")
        os.makedirs(class_dir, exist_ok=True)
        start, end = rng.uniform(0, 255, (2, 1, 1, 3))
        gradient = start + (end - start) * (0.6 * rows + 0.4 * cols)
        image = Image.fromarray(gradient.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, x1 = sorted(rng.integers(0, width, 2))
            y0, y1 = sorted(rng.integers(0, height, 2))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
        pixels = np.asarray(image, np.float32) + rng.normal(0.0, 18.0, (height, width, 3))
        path = os.path.join(class_dir, f"{index:05d}.jpg")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def time_per_image(dataset, batch_size: int, steps: int, warmup: int) -> Timing:
    """Seconds per image of a fresh iterator over `dataset`, after `warmup` untimed batches."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    stopwatch = Stopwatch()
    stopwatch.start()
    for _ in range(steps):
        next(iterator)
    return stopwatch.elapsed().per(steps * batch_size)


def _bare(paths: list[str], batch_size: int, transform):
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = False
    return (tf.data.Dataset.from_tensor_slices(paths).repeat().enumerate()
            .map(lambda index, path: transform(tf.io.read_file(path), index),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True).with_options(options)
            .prefetch(tf.data.AUTOTUNE))


def bare_decode_and_resize(paths: list[str], image_size: int, batch_size: int):
    """The ceiling: decode the whole JPEG and resize; nothing else."""
    import tensorflow as tf

    def transform(data, index):
        image = tf.io.decode_jpeg(data, channels=3)
        return tf.image.resize(image, [image_size, image_size], method="bicubic")

    return _bare(paths, batch_size, transform)


def bare_crop_and_resize(paths: list[str], image_size: int, batch_size: int):
    """The pipeline's decode work alone: fused random crop-decode and resize."""
    import tensorflow as tf

    from efficientnet_tpu.data.preprocessing import inception_crop

    return _bare(paths, batch_size, lambda data, index: inception_crop(
        data, image_size, tf.stack([tf.constant(0, tf.int64), index])))


def _rates(timing: Timing) -> str:
    return f"{1 / timing.wall_s:.0f}/s ({1 / max(timing.cpu_s, 1e-12):.0f}/cpu-s)"


def run(num_images: int, image_size: int, batch_size: int, steps: int, rounds: int,
        work_dir: str | None, policies: Sequence[str] = POLICIES,
        randaugment_magnitude: float = 10.0) -> dict[str, list[Timing]]:
    """Writes the JPEGs, times the candidates and prints the report; returns seconds per image per round."""
    from efficientnet_tpu.data import DataOptions, build_dataset

    with tempfile.TemporaryDirectory(dir=work_dir) as directory:
        paths = write_jpegs(directory, num_images)
        mean_kb = np.mean([os.path.getsize(path) for path in paths]) / 1024
        print(f"machine: {machine_description()}")
        print(f"data: {num_images} JPEGs 500x375, mean {mean_kb:.0f} KB; batch {batch_size}, "
              f"output {image_size}x{image_size}, {steps} timed steps per round")
        datasets = dict(zip(CANDIDATES, (
            build_dataset("folder", "train", global_batch_size=batch_size, image_size=image_size, training=True,
                          data_dir=directory),
            bare_decode_and_resize(paths, image_size, batch_size),
            bare_crop_and_resize(paths, image_size, batch_size))))
        augmented = [f"{policy}/{semantics}" for policy in policies for semantics in SEMANTICS]
        for name in augmented:
            policy, semantics = name.split("/")
            datasets[name] = build_dataset(
                "folder", "train", global_batch_size=batch_size, image_size=image_size, training=True,
                data_dir=directory, options=DataOptions(augment=policy, augment_semantics=semantics,
                                                        randaugment_magnitude=randaugment_magnitude))
        warmup = max(2, steps // 5)

        def measure(dataset) -> Callable[[], Timing]:
            return lambda: time_per_image(dataset, batch_size, steps, warmup)

        series = alternating_rounds(
            {name: measure(dataset) for name, dataset in datasets.items()}, rounds,
            on_round=lambda index, results: print(f"round {index + 1}: " + ", ".join(
                f"{name} {_rates(timing)}" for name, timing in results.items())))
    medians = {name: median(values) for name, values in series.items()}
    print("median images/s: " + ", ".join(f"{name} {1 / medians[name].wall_s:.1f}" for name in series))
    print("median images per CPU-second: " + ", ".join(
        f"{name} {1 / max(medians[name].cpu_s, 1e-12):.1f}" for name in series))
    for reference in CANDIDATES[1:]:
        share = speedups(series, reference)["pipeline"]
        print(f"pipeline / bare {reference}: {100 * share.wall:.0f}% of images/s, "
              f"{100 * share.cpu:.0f}% of images per CPU-second")
    if augmented:
        to_plain = speedups(series, "pipeline")
        for name in augmented:
            print(f"{name} / crop+flip: {100 * to_plain[name].wall:.0f}% of images/s, "
                  f"{100 * to_plain[name].cpu:.0f}% of images per CPU-second")
        for policy in policies:
            share = speedups(series, f"{policy}/paper")[f"{policy}/reference"]
            print(f"{policy} reference / paper semantics: {100 * share.wall:.0f}% of images/s, "
                  f"{100 * share.cpu:.0f}% of images per CPU-second")
    return series


def _define_flags(values: flags.FlagValues) -> None:
    common.positive_int(values, "num_images", 256, "JPEGs to write.")
    common.positive_int(values, "image_size", 224, "Output height and width.")
    common.positive_int(values, "batch_size", 64, "Images per batch.")
    common.positive_int(values, "steps", 20, "Timed batches per candidate per round.")
    common.positive_int(values, "rounds", 3, "Alternating measurement rounds.")
    flags.DEFINE_string("work_dir", None, "Where to write the JPEGs (a temporary folder inside it).",
                        flag_values=values)
    flags.DEFINE_list("policies", list(POLICIES), "Augmented pipelines to time, each in both semantics: "
                      "autoaugment, randaugment (empty: none).", flag_values=values)
    flags.DEFINE_float("randaugment_magnitude", 10.0, "RandAugment's magnitude (0-30).", flag_values=values)


def _run(values: flags.FlagValues) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if values.work_dir is not None and not os.path.isdir(values.work_dir):
        raise common.UsageError(f"--work_dir={values.work_dir} is not a folder; create it or leave the flag out")
    unknown = [policy for policy in values.policies if policy not in POLICIES]
    if unknown:
        raise common.UsageError(f"--policies: unknown {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    if not 0 <= values.randaugment_magnitude <= 30:
        raise common.UsageError(f"--randaugment_magnitude={values.randaugment_magnitude:g} is outside [0, 30]")
    try:
        run(values.num_images, values.image_size, values.batch_size, values.steps, values.rounds,
            values.work_dir, values.policies, values.randaugment_magnitude)
    except OSError as error:
        raise common.UsageError(f"could not write or read the JPEGs: {error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_cli(__doc__, _define_flags, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
