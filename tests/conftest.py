"""Shared fixtures: the Fashion-MNIST location, an isolated cache, and tiny datasets on disk."""

from __future__ import annotations

import os

# One OpenMP thread per process: the tests use tiny models (thread start-up costs more than it
# saves) and, on a machine shared with other jobs, oversubscribed OpenMP threads spin-wait and make
# torch 20x slower. Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = REPO.parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own dataset cache, so tests never touch ~/.cache or each other."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANAUG_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def cache_dir(_isolated_cache: Path) -> Path:
    return _isolated_cache


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The shared Fashion-MNIST IDX folder; tests that need it skip when it is absent."""
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_MNIST}")
    return FASHION_MNIST


def pattern_images(
    counts: list[int], size: int = 16, channels: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Class-distinct tiny images: class k is a bright bar at a class-specific position plus noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, n in enumerate(counts):
        for _ in range(n):
            img = rng.integers(0, 40, size=(size, size, channels), dtype=np.uint8)
            row = (k * 5 + 2) % size
            img[row : row + max(2, size // 6)] = 230
            images.append(img)
            labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64)


def write_imagefolder(
    root: Path, counts: list[int], size: int = 16, channels: int = 1, seed: int = 0
) -> Path:
    """Write ``root/class_k/img_i.png`` with ``counts[k]`` images per class."""
    images, labels = pattern_images(counts, size, channels, seed)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class_{lab}"
        folder.mkdir(parents=True, exist_ok=True)
        mode = "L" if channels == 1 else "RGB"
        Image.fromarray(img[..., 0] if channels == 1 else img, mode=mode).save(folder / f"img_{i:04d}.png")
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False):
    """Run ``python -m ganaug ARGS`` in a subprocess and return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "ganaug", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"ganaug {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def run_cli_one_thread(*args: str) -> subprocess.CompletedProcess:
    """:func:`run_cli` with ``OMP_NUM_THREADS=1`` forced in the subprocess, whatever the caller's."""
    return run_cli(*args, env={"OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).

    Tiny convolutions gain nothing from threads, and on a shared 2-core machine OpenMP spin-waits
    make them several times slower; subprocesses get OMP_NUM_THREADS=1 for the same reason."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_noise_folder(root: Path, counts: dict[str, int], size: int = 8, seed: int = 0) -> Path:
    """Write ``root/NAME/i.png``: ``counts[NAME]`` uniform-noise gray images per class, in order."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def tree_digest(root: Path) -> dict[str, bytes]:
    """Path -> bytes of every file under ``root`` (to prove nothing changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def uplift_report_skeleton(seeds: list[dict], policies: list[dict] | None = None) -> dict:
    """The smallest uplift report ``ganaug.report.uplift_markdown`` renders: two classes, every arm
    of ``seeds[0]`` at 50% accuracy (``seeds``: per-seed entries whose arms carry ``n_train`` and
    ``train_seconds``)."""
    arms = list(seeds[0]["arms"])
    score = {"accuracy": {"mean": 50.0, "std": 0.0}, "balanced_accuracy": {"mean": 50.0, "std": 0.0}}
    settings = {
        "counts": [5, 5],
        "seeds": [s["seed"] for s in seeds],
        "classifier_steps": 10,
        "classifier_batch_size": 8,
        "hflip": False,
        "generator": "g.onnx",
        "gan_options": {},
        "policies": policies or [],
    }
    return {
        "settings": settings,
        "classes": ["a", "b"],
        "arms": arms,
        "summary": {arm: {**score, "per_class_accuracy": [40.0, 60.0]} for arm in arms},
        "paired": {arm: score for arm in arms if arm != "real"},
        "seeds": seeds,
        "wall_seconds": 1.0,
    }


def export_random_generator(folder: Path, classes: list[str], size: int, seed: int, run_id: str) -> Path:
    """A random-weights conditional mlp generator (z_dim 8, gray) exported to ``folder/g.onnx``."""
    from ganaug.export import export_generator

    save_random_generator(folder / "g.safetensors", classes, size, seed, run_id)
    export_generator(folder / "g.safetensors", folder / "g.onnx")
    return folder / "g.onnx"


def save_random_generator(path: Path, classes: list[str], size: int, seed: int, run_id: str) -> Path:
    """A random-weights conditional mlp generator (z_dim 8, gray) saved as a weights file at ``path``."""
    import torch

    from ganaug.checkpoint import save_generator
    from ganaug.models import build_generator

    torch.manual_seed(seed)
    module = build_generator("mlp", num_classes=len(classes), z_dim=8, image_size=size, channels=1, width=16)
    save_generator(path, module, classes=classes, run_id=run_id, step=0)
    return path


def train_tiny_mlp_run(dataset, out: Path) -> Path:
    """A real 4-step training run of a tiny mlp GAN on ``dataset``; returns its run directory."""
    from ganaug.training import train

    return train(
        None,
        out,
        dataset=dataset,
        arch="mlp",
        steps=4,
        batch_size=8,
        g_width=8,
        d_width=8,
        z_dim=8,
        precision="fp32",
        quiet=True,
        progress=False,
    ).run_dir


def rewrite_onnx_props(src: Path, dst: Path, **raw: str | None) -> Path:
    """Copy an ONNX file with some ``ganaug.*`` metadata replaced by raw strings (None: removed)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in raw.items():
        if value is None:
            props.pop(f"ganaug.{key}", None)
        else:
            props[f"ganaug.{key}"] = value
    helper.set_model_props(model, props)
    onnx.save(model, str(dst))
    return dst
