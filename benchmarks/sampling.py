"""Sampling speed: torch eager vs onnxruntime, same model, same batch, measured in one run.

For each architecture a generator is built (random weights: speed does not depend on training),
exported with ``ganaug.export`` (uint8 NHWC layout, the default), and timed from a latent batch to
uint8 NHWC images on both backends: torch eager fp32 on the CPU (``quantize_torch`` included) and an
onnxruntime CPU session, each with the same number of threads. After a warm-up, the two backends
alternate for ``--repeats`` rounds; each round times enough batches for about ``--min-time``
seconds, and the table reports the median images/s.

    python benchmarks/sampling.py --json benchmarks/sampling.json
    python benchmarks/sampling.py --arch dcgan --image-size 64 --batch-sizes 1,64,256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ganaug import __version__
from ganaug.export import export_generator
from ganaug.models import build_generator
from ganaug.sampling import quantize_torch


def _rate(fn, batch: int, min_time: float) -> float:
    """Images per second of ``fn`` over at least ``min_time`` seconds."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return n * batch / elapsed


def bench_arch(arch: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    torch.manual_seed(0)
    kw = {"width": args.width} if args.width else {}
    g = build_generator(
        arch,
        num_classes=args.classes,
        z_dim=args.z_dim,
        image_size=args.image_size,
        channels=args.channels,
        **kw,
    ).eval()
    onnx_path = workdir / f"{arch}.onnx"
    report = export_generator(g, onnx_path, classes=[f"c{i}" for i in range(args.classes)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    params = sum(p.numel() for p in g.parameters())
    rows = []
    rng = np.random.default_rng(0)
    for batch in args.batch_sizes:
        z = rng.standard_normal((batch, args.z_dim), dtype=np.float32)
        lab = rng.integers(0, args.classes, size=batch, dtype=np.int64)
        zt, lt = torch.from_numpy(z), torch.from_numpy(lab)

        def run_torch(zt=zt, lt=lt) -> None:
            with torch.inference_mode():
                quantize_torch(g(zt, lt)).numpy()

        def run_ort(z=z, lab=lab) -> None:
            session.run(["image"], {"z": z, "label": lab})

        for fn in (run_torch, run_ort):  # warm-up
            _rate(fn, batch, args.min_time / 2)
        torch_rates, ort_rates = [], []
        for _ in range(args.repeats):  # alternate so drift hits both equally
            torch_rates.append(_rate(run_torch, batch, args.min_time))
            ort_rates.append(_rate(run_ort, batch, args.min_time))
        t, o = statistics.median(torch_rates), statistics.median(ort_rates)
        rows.append(
            {
                "arch": arch,
                "image_size": args.image_size,
                "channels": args.channels,
                "params": params,
                "threads": args.threads,
                "batch_size": batch,
                "torch_img_s": round(t, 1),
                "ort_img_s": round(o, 1),
                "speedup": round(o / t, 2),
                "onnx_bytes": report.size_bytes,
                "parity_max_abs_error": report.max_abs_error,
            }
        )
        print(
            f"  {arch:7s} batch {batch:4d}: torch {t:9.1f} img/s   onnxruntime {o:9.1f} img/s",
            file=sys.stderr,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp,dcgan,resnet", help="Comma-separated architectures.")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--z-dim", type=int, default=128)
    parser.add_argument("--width", type=int, default=0, help="Model width (0: the architecture's default).")
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.3, help="Seconds per timed round.")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="Threads for both backends. On a busy machine use 1: torch's OpenMP threads slow down "
        "badly when the cores are oversubscribed.",
    )
    parser.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    torch.set_num_threads(args.threads)

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch.split(","):
            rows += bench_arch(arch.strip(), args, Path(tmp))

    print("| arch | size | params | batch | torch eager img/s | onnxruntime img/s | ort / torch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['image_size']}x{r['image_size']}x{r['channels']} | "
            f"{r['params'] / 1e6:.2f}M | {r['batch_size']} | "
            f"{r['torch_img_s']:.0f} | {r['ort_img_s']:.0f} | {r['speedup']:.2f}x |"
        )
    env = {
        "ganaug": __version__,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"\n{env}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
