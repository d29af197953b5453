"""Issue 18, "the first hour": example data on disk, a CLI that fails fast and logs plainly, class
order that survives a round trip, ``--fill best``, honest report wording and relative paths."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, export_random_generator, run_cli, uplift_report_skeleton

from ganaug.augment import augment_dataset
from ganaug.data import load_dataset
from ganaug.demo import DEMO_COUNTS, embedded_dataset, imbalanced_copy
from ganaug.progress import Progress

CLASSES = embedded_dataset("test").classes  # T-shirt-top ... Ankle boot: not sorted


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights generator over the embedded data's 10 classes (28x28 gray), as ONNX."""
    return export_random_generator(tmp_path_factory.mktemp("gen"), CLASSES, 28, 0, "first-hour")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ganaug data example`` outputs: fm-train (folder), fm-imb (imbalanced folder)."""
    root = tmp_path_factory.mktemp("example")
    run_cli("data", "example", "fm-train", cwd=root, check=True)
    run_cli("data", "example", "fm-imb", "--imbalanced", cwd=root, check=True)
    return root


# -- data example ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "split", "printed", "per_class"),
    [
        ("folder", "train", "d", 250),
        ("idx", "test", "d/t10k-images-idx3-ubyte.gz", 100),
        ("npz", "train", "d/train.npz", 250),
    ],
)
def test_data_example_writes_a_readable_dataset(
    tmp_path: Path, fmt: str, split: str, printed: str, per_class: int
):
    proc = run_cli("data", "example", "d", "--format", fmt, "--split", split, cwd=tmp_path, check=True)
    assert proc.stdout.strip() == printed
    ds = load_dataset(tmp_path / printed, cache=False)
    assert ds.classes == CLASSES  # the embedded order, for class folders too (classes.json)
    assert ds.class_counts() == dict.fromkeys(CLASSES, per_class)
    assert (
        "MIT" in (tmp_path / "d" / "FASHION_MNIST_LICENSE").read_text()
        and (tmp_path / "d" / "NOTICE").is_file()
    )
    again = run_cli("data", "example", "d", "--format", fmt, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_data_example_imbalanced_is_the_demo_draw(example: Path):
    ds = load_dataset(example / "fm-imb", cache=False)
    assert list(ds.class_counts().values()) == list(DEMO_COUNTS)


# -- good citizen ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "made"),
    [
        (["train", "missing/data", "--out", "X"], "X"),
        (["export", "missing/run", "--out", "g.onnx"], "g.onnx"),
        (["eval", "quality", "-g", "missing/run", "--data", ".", "--out", "q"], "q"),
        (["eval", "quality", "-g", ".", "--data", "missing/data", "--out", "q"], "q"),
        (["eval", "cas", "-g", ".", "--data", ".", "--test", "missing/test"], "cas"),
        (["train", "--out", "missing/run", "--resume"], "missing"),
        (["sample", "missing/run", "-n", "2", "--out", "s"], "s"),
        (["augment", "missing/data", "-g", ".", "--out", "a"], "a"),
        (["data", "inspect", "missing/data"], "missing"),
    ],
)
def test_missing_input_fails_before_torch_and_creates_nothing(tmp_path: Path, args: list[str], made: str):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ganaug", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2  # bad usage: a named input that does not exist
    assert "not found: missing/" in proc.stderr or "missing/run is not a run directory" in proc.stderr
    imported = [
        ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")
    ]
    assert imported and "torch" not in imported and "onnxruntime" not in imported
    assert not (tmp_path / made).exists()


def test_progress_off_a_terminal_is_a_few_plain_lines():
    stream = io.StringIO()  # not a terminal
    with Progress(1000, "sampling", "img", stream=stream) as bar:
        for _ in range(100):
            bar.update(10)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 10
    assert lines[0].startswith("sampling: 100/1000 img (10%)") and lines[-1].startswith("sampling: 1000/1000")
    quiet = io.StringIO()
    with Progress(10, "x", enabled=False, stream=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_version_names_each_distribution_once():
    out = run_cli("version", check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("onnxruntime "))
    assert line.split()[1:] == [line.split()[-1]], (
        line
    )  # "onnxruntime   1.x", not "onnxruntime onnxruntime 1.x"


# -- class order round trip ------------------------------------------------------------------------
def test_class_order_survives_sample_augment_and_train(tmp_path: Path, gen: Path, example: Path):
    run_cli("sample", str(gen), "--out", str(tmp_path / "synth"), "-n", "3", check=True)
    inspected = json.loads(run_cli("data", "inspect", str(tmp_path / "synth"), "--json", check=True).stdout)
    assert list(inspected["class_counts"]) == CLASSES
    records = [json.loads(x) for x in (tmp_path / "synth" / "manifest.jsonl").read_text().splitlines()]
    synth = load_dataset(tmp_path / "synth", cache=False)
    assert synth.classes == CLASSES
    assert sorted(r["label_index"] for r in records) == sorted(synth.labels.tolist())

    aug = tmp_path / "aug"
    proc = run_cli("augment", str(example / "fm-imb"), "-g", str(gen), "--out", str(aug), "--strategy", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((aug / "classes.json").read_text()) == CLASSES
    assert load_dataset(aug, cache=False).classes == CLASSES
    assert re.search(r"^synthetic: \d+/\d+ img", proc.stderr, re.M) and "\r" not in proc.stderr

    run = tmp_path / "run"
    trained = run_cli(
        "train", str(aug), "--out", str(run), "--arch", "mlp", "--steps", "2", "--log-every", "1"
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads((run / "classes.json").read_text()) == CLASSES  # every label index kept
    assert re.search(r"^step 2/2  D loss [\d.]+  G loss", trained.stderr, re.M) and "\r" not in trained.stderr


def test_incomplete_classes_json_is_ignored_with_a_warning(tmp_path: Path, example: Path):
    import shutil

    data = tmp_path / "d"
    shutil.copytree(example / "fm-train", data)
    (data / "classes.json").write_text(json.dumps(["Trouser", "Bag"]))
    with pytest.warns(UserWarning, match="classes.json: ignored"):
        ds = load_dataset(data, cache=False)
    assert ds.classes == sorted(CLASSES)


# -- augment: hint and --fill best -----------------------------------------------------------------
def test_augment_on_balanced_data_says_why_nothing_was_added(tmp_path: Path, gen: Path, example: Path):
    proc = run_cli("augment", str(example / "fm-train"), "-g", str(gen), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "(0 synthetic)" in proc.stdout
    assert "every class already has 250 images" in proc.stderr and "--strategy 0.5" in proc.stderr


def _small_imbalanced():
    return imbalanced_copy(embedded_dataset("train"), [12] + [4] * 9, seed=0)


def _augment(tmp_path: Path, gen: Path, name: str, **kw):
    opts = {"filters": ["confidence"], "min_confidence": 1.0, "max_attempts": 2, "seed": 1}
    opts["plugin_options"] = {"confidence_steps": 10}
    return augment_dataset(_small_imbalanced(), gen, tmp_path / name, **{**opts, **kw})


def test_fill_best_fills_classes_the_confidence_filter_starved(tmp_path: Path, gen: Path):
    starved = _augment(tmp_path, gen, "none")  # p >= 1.0: nothing passes
    assert (
        sum(starved["counts"]["synthetic"].values()) == 0 and starved["shortfall"] and not starved["filled"]
    )

    summary = _augment(tmp_path, gen, "best", fill="best")
    assert summary["fill"] == "best" and not summary["shortfall"]
    assert set(summary["counts"]["after"].values()) == {12}  # balanced
    assert summary["filled"] == {c: 8 for c in CLASSES[1:]}
    records = [json.loads(x) for x in (tmp_path / "best" / "manifest.jsonl").read_text().splitlines()]
    fallback = [r for r in records if r.get("fallback")]
    assert len(fallback) == 72 and all(r["fallback"]["fill"] == "best" for r in fallback)
    for name in CLASSES[1:]:  # the most confident of the rejected candidates, best first
        scores = [r["fallback"]["score"] for r in fallback if r["label"] == name]
        assert scores == sorted(scores, reverse=True) and all(0 <= s < 1 for s in scores)


def test_fill_best_never_takes_near_duplicates(tmp_path: Path, gen: Path):
    summary = _augment(
        tmp_path,
        gen,
        "dup",
        fill="best",
        filters=["confidence", "near-duplicate"],
        near_duplicate_threshold=1.0,
    )
    assert not summary["filled"] and sum(summary["shortfall"].values()) == 72


# -- reports and published results -----------------------------------------------------------------
def test_uplift_report_says_one_seed_when_there_is_one():
    from ganaug.report import uplift_markdown

    md = uplift_markdown(
        uplift_report_skeleton([{"seed": 0, "arms": {"real": {"n_train": 10, "train_seconds": 1.0}}}])
    )
    assert "## Per-class accuracy (%, one seed)" in md and "mean over seeds" not in md


def test_demo_report_links_theory_from_the_run_folder(tmp_path: Path):
    from ganaug.demo import _balance_text, _per_class_plot, _theory_link

    out = tmp_path / "runs" / "demo"
    out.mkdir(parents=True)
    link = _theory_link(out)
    target = re.search(r"\]\(([^)#]+)", link)
    if (REPO / "docs" / "theory.md").is_file():  # a source checkout: a relative link that resolves
        assert target and (out / target.group(1)).resolve() == (REPO / "docs" / "theory.md").resolve()
    (out / "eval").mkdir()
    assert _per_class_plot(out / "eval", out) == []
    (out / "eval" / "per_class_accuracy.png").write_bytes(b"png")
    assert _per_class_plot(out / "eval", out)[0][:2] == ("img", "eval/per_class_accuracy.png")
    counts = {"after": {"a": 10, "b": 10}}
    assert "balanced" in _balance_text(counts, {"b": 3}, {}) and "--fill best" in _balance_text(
        counts, {"b": 3}, {}
    )
    assert "b is 4 short" in _balance_text({"after": {"a": 10, "b": 6}}, {}, {"b": 4})


def test_published_results_record_no_absolute_paths():
    absolute = re.compile(r"(?<![\w.~])/(work|home|tmp|Users|root|mnt|scratch)/")
    for path in sorted((REPO / "benchmarks" / "results").glob("*")):
        if path.suffix not in {".md", ".json", ".csv", ".txt"}:
            continue  # images
        assert not absolute.search(path.read_text(encoding="utf-8")), path.name
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import uplift

        args = uplift.parse_args([])
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert not args.data_dir.is_absolute() and not args.out.is_absolute() and not args.work.is_absolute()
