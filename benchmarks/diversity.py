"""Within-class diversity and per-class pixel Fréchet distance of a generator on Fashion-MNIST.

Mode collapse inside a class is what makes GAN samples useless for augmentation, so this is the
number to watch when changing the generator or discriminator.

    # evaluate any run directory / weights / .onnx
    python benchmarks/diversity.py eval runs/bench_uplift/100/seed_0/gan
    # train a dcgan on 100 images per class (seed 0 draw) and evaluate it; --no-minibatch-std is the A/B
    OMP_NUM_THREADS=1 python benchmarks/diversity.py train --steps 1500 --out runs/div_mb
    OMP_NUM_THREADS=1 python benchmarks/diversity.py train --steps 1500 --out runs/div_nomb --no-minibatch-std

Diversity (from ``ganaug.demo.diversity_ratio``): mean pairwise RMS pixel distance among 64 samples
of a class over the same among 64 real test images of that class, averaged over classes (1.0 = as
varied as the real data). Pixel FD: Fréchet distance between Gaussians fitted to 7x7 average-pooled
pixels, per class against 300 real test images, averaged over classes (lower is better).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FASHION_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"


def _pooled(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)[..., 0] / 255.0
    n, s = x.shape[:2]
    return x.reshape(n, 7, s // 7, 7, s // 7).mean(axis=(2, 4)).reshape(n, -1)


def pixel_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to 7x7-pooled pixels of two image sets."""
    fa, fb = _pooled(a), _pooled(b)
    mu = fa.mean(0) - fb.mean(0)
    ca, cb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    eig = np.linalg.eigvals(ca @ cb)
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def evaluate(source: str | Path, data_dir: Path = FASHION_MNIST) -> dict:
    from ganaug.data import load_dataset
    from ganaug.demo import diversity_ratio
    from ganaug.sampling import open_sampler

    test = load_dataset(data_dir / "t10k-images-idx3-ubyte.gz")
    labels = np.repeat(np.arange(test.num_classes), 64)
    images = open_sampler(source).generate(labels, seed=1)
    div = diversity_ratio(images, labels, test, per_class=64)
    fd = [pixel_fd(images[labels == k], test.images[test.labels == k][:300]) for k in range(test.num_classes)]
    return {
        "source": str(source),
        "diversity_mean": round(float(np.mean(list(div.values()))), 3),
        "pixel_fd_per_class": round(float(np.mean(fd)), 3),
        "diversity": {k: round(v, 3) for k, v in div.items()},
    }


def train_and_evaluate(args: argparse.Namespace) -> dict:
    import ganaug.models.dcgan as dcgan
    from ganaug.data import load_dataset
    from ganaug.training import require_complete, train

    if args.no_minibatch_std:
        original = dcgan.DCGANDiscriminator.__init__

        def without(self, *a, minibatch_std=False, **kw):  # the A/B switch, for this process only
            original(self, *a, minibatch_std=minibatch_std, **kw)

        dcgan.DCGANDiscriminator.__init__ = without
    subset = load_dataset(args.data_dir / "train-images-idx3-ubyte.gz").sample_per_class(
        args.per_class, seed=0
    )
    start = time.perf_counter()
    result = train(out=args.out, dataset=subset, steps=args.steps, overwrite=True, quiet=True)
    require_complete(result, f"the GAN in {args.out}")
    report = evaluate(result.run_dir, args.data_dir)
    report.update(train_s=round(time.perf_counter() - start), minibatch_std=not args.no_minibatch_std)
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("eval", help="Evaluate a run directory, weights file or .onnx generator.")
    ev.add_argument("source")
    tr = sub.add_parser("train", help="Train a dcgan on N per class, then evaluate it.")
    tr.add_argument("--steps", type=int, default=1500)
    tr.add_argument("--per-class", type=int, default=100)
    tr.add_argument("--out", default="runs/diversity")
    tr.add_argument("--no-minibatch-std", action="store_true")
    for sp in (ev, tr):
        sp.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    args = p.parse_args(argv)
    report = evaluate(args.source, args.data_dir) if args.cmd == "eval" else train_and_evaluate(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
