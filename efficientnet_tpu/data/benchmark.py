"""Throughput of the training input pipeline against this machine's ceiling.

    python -m efficientnet_tpu.data.benchmark [--num_images 256] [--image_size 224]
        [--batch_size 64] [--steps 20] [--rounds 3]

Writes ImageNet-sized JPEGs (500x375, shapes over gradients plus sensor-like
noise, about 90 KB each, where ImageNet's average is about 110 KB) into a
class-folder layout, then measures, in the same process and in alternating
rounds:
  pipeline:     build_dataset('folder', 'train', ...): shuffled file reads,
                random crop fused with JPEG decoding, bicubic resize, flip,
                batch, prefetch;
  decode+resize: the bare ceiling: read, decode the whole JPEG, resize, batch
                in a parallel tf.data map;
  crop+resize:  the same bare map doing the pipeline's own fused crop-decode,
                which isolates the cost of everything else in the pipeline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from efficientnet_tpu.machine import cpu_description


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


def measure(dataset, batch_size: int, steps: int, warmup: int) -> tuple[float, float]:
    """(images per second, images per CPU-second of this process).

    The second is what the pipeline costs, whatever else shares the machine.
    """
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        next(iterator)
    images = steps * batch_size
    return (images / (time.perf_counter() - start),
            images / max(time.process_time() - start_cpu, 1e-9))


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


def run(num_images: int, image_size: int, batch_size: int, steps: int, rounds: int,
        work_dir: str | None) -> dict[str, float]:
    from efficientnet_tpu.data import build_dataset

    with tempfile.TemporaryDirectory(dir=work_dir) as directory:
        paths = write_jpegs(directory, num_images)
        mean_kb = np.mean([os.path.getsize(path) for path in paths]) / 1024
        print(f"machine: {cpu_description()}")
        print(f"data: {num_images} JPEGs 500x375, mean {mean_kb:.0f} KB; batch {batch_size}, "
              f"output {image_size}x{image_size}, {steps} timed steps per round")
        candidates = {
            "pipeline": build_dataset("folder", "train", global_batch_size=batch_size,
                                      image_size=image_size, training=True, data_dir=directory),
            "decode+resize": bare_decode_and_resize(paths, image_size, batch_size),
            "crop+resize": bare_crop_and_resize(paths, image_size, batch_size),
        }
        warmup = max(2, steps // 5)
        rates: dict[str, list[float]] = {name: [] for name in candidates}
        cpu_rates: dict[str, list[float]] = {name: [] for name in candidates}
        for round_index in range(rounds):
            for name, dataset in candidates.items():
                rate, cpu_rate = measure(dataset, batch_size, steps, warmup)
                rates[name].append(rate)
                cpu_rates[name].append(cpu_rate)
            print(f"round {round_index + 1}: " + ", ".join(
                f"{name} {rates[name][-1]:.0f}/s ({cpu_rates[name][-1]:.0f}/cpu-s)"
                for name in candidates))
    result = {name: statistics.median(values) for name, values in rates.items()}
    result.update({f"{name} per cpu-s": statistics.median(values)
                   for name, values in cpu_rates.items()})
    print("median images/s: " + ", ".join(f"{name} {result[name]:.1f}" for name in candidates))
    print("median images per CPU-second: " + ", ".join(
        f"{name} {result[name + ' per cpu-s']:.1f}" for name in candidates))
    for reference in ("decode+resize", "crop+resize"):
        print(f"pipeline / bare {reference}: "
              f"{100 * result['pipeline'] / result[reference]:.0f}% of images/s, "
              f"{100 * result['pipeline per cpu-s'] / result[reference + ' per cpu-s']:.0f}% "
              "of images per CPU-second")
    return result


class _OneLineParser(argparse.ArgumentParser):
    """Bad flags end with one `error: ...` line, not a usage block."""

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=256)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work_dir", default=None, help="where to write the JPEGs (a temp dir)")
    args = parser.parse_args(argv)
    for name in ("num_images", "image_size", "batch_size", "steps", "rounds"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be at least 1", file=sys.stderr)
            return 2
    try:
        run(args.num_images, args.image_size, args.batch_size, args.steps, args.rounds,
            args.work_dir)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
