"""Hostile data files, hostile plugins and huge requests (issue 16): one-line errors, nothing published.

Data cases go through ``ganaug data inspect`` (and the library where a warning is the answer);
plugin and memory cases through ``ganaug augment`` / ``sample`` / ``plugins list`` in subprocesses,
with throwaway plugin modules on PYTHONPATH (``--plugin``) or a fake installed distribution
(entry points), as in ``tests/test_plugins.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, save_random_generator, write_imagefolder, write_noise_folder

from ganaug.data import DataWarning, load_dataset
from ganaug.errors import DataError, PluginError, UsageError

CLASSES = ["a", "b", "c"]


def one_line_error(proc, *needles: str, code: int = 1) -> str:
    """The single ``error:`` line of a failed command, checked for ``needles``."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_module(folder: Path, name: str, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def zero_pixel_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def idx_header(magic: int, *dims: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_imagefolder(tmp_path / "data", [3, 3], size=8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights 3-class 8x8 gray generator (torch sampler, no ONNX export needed)."""
    path = tmp_path_factory.mktemp("gen") / "g.safetensors"
    return save_random_generator(path, CLASSES, 8, seed=0, run_id="test-hostile-inputs")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = dict(zip(CLASSES, (4, 2, 1), strict=True))
    return write_noise_folder(tmp_path_factory.mktemp("imgs") / "images", counts)


# -- data readers --------------------------------------------------------------------------------
def test_symlink_loop_in_a_class_folder_is_skipped_with_a_warning(folder: Path) -> None:
    (folder / "class_0" / "self.png").symlink_to("self.png")
    (folder / "class_1" / "x.png").symlink_to("y.png")
    (folder / "class_1" / "y.png").symlink_to("x.png")
    with pytest.warns(DataWarning, match=r"skipped 3 symlink loop\(s\).*self\.png"):
        ds = load_dataset(folder, cache=False)
    assert len(ds) == 6
    res = run_cli("data", "inspect", str(folder), "--strict")
    one_line_error(res, "symlink loop", str(folder / "class_0" / "self.png"))


def test_class_folders_that_map_to_the_same_name_are_refused(folder: Path) -> None:
    (folder / "class_0").rename(folder / "Cat")
    (folder / "class_1").rename(folder / "cat")
    res = run_cli("data", "inspect", str(folder))
    one_line_error(res, "duplicate class name", "'Cat'", "'cat'", str(folder))


def test_manifest_labels_that_collide_as_folder_names_are_refused(folder: Path) -> None:
    files = sorted(folder.rglob("*.png"))
    rows = ["path,label"] + [
        f"{f.relative_to(folder)},{'a:b' if i % 2 else 'a_b'}" for i, f in enumerate(files)
    ]
    (folder / "list.csv").write_text("\n".join(rows) + "\n")
    res = run_cli("data", "inspect", str(folder / "list.csv"))
    one_line_error(res, "duplicate class name", "'a:b'", "'a_b'", "list.csv")


def test_zero_pixel_png_is_skipped_and_named(folder: Path) -> None:
    bad = folder / "class_0" / "empty.png"
    bad.write_bytes(zero_pixel_png())
    with pytest.warns(DataWarning, match="empty.png"):
        assert len(load_dataset(folder, cache=False)) == 6
    one_line_error(run_cli("data", "inspect", str(folder), "--strict"), str(bad))


def test_zero_pixel_npz_images_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((4, 0, 0), np.uint8), labels=np.array([0, 1, 0, 1]))
    one_line_error(run_cli("data", "inspect", str(path)), str(path), "0-pixel")


def test_zero_pixel_idx_images_are_refused(tmp_path: Path) -> None:
    images = tmp_path / "x-images-idx3-ubyte"
    images.write_bytes(idx_header(2051, 4, 0, 28))
    (tmp_path / "x-labels-idx1-ubyte").write_bytes(idx_header(2049, 4) + bytes([0, 1, 0, 1]))
    one_line_error(run_cli("data", "inspect", str(images)), str(images), "0-pixel")


@pytest.mark.parametrize(("label", "kind"), [({"x": 1}, "dict"), ([1, 2], "list"), (None, "null")])
def test_jsonl_labels_that_are_objects_lists_or_null_are_refused(folder: Path, label, kind: str) -> None:
    files = sorted(folder.rglob("*.png"))
    lines = [json.dumps({"path": str(f.relative_to(folder)), "label": f.parent.name}) for f in files]
    lines.insert(2, json.dumps({"path": str(files[0].relative_to(folder)), "label": label}))
    (folder / "list.jsonl").write_text("\n".join(lines) + "\n")
    res = run_cli("data", "inspect", str(folder / "list.jsonl"))
    one_line_error(res, f"list.jsonl:3: 'label' is {kind}")


def test_path_listed_twice_with_two_labels_is_refused(folder: Path) -> None:
    files = sorted(folder.rglob("*.png"))
    rows = ["path,label"] + [f"{f.relative_to(folder)},{f.parent.name}" for f in files]
    rows.append(f"{files[0].relative_to(folder)},class_1")
    (folder / "list.csv").write_text("\n".join(rows) + "\n")
    res = run_cli("data", "inspect", str(folder / "list.csv"))
    one_line_error(res, f"list.csv:{len(rows)}", str(files[0].relative_to(folder)), "'class_1'", "'class_0'")


def test_path_listed_twice_with_the_same_label_is_read_once_with_a_warning(folder: Path) -> None:
    files = sorted(folder.rglob("*.png"))
    rows = [f"{f.relative_to(folder)},{f.parent.name}" for f in files] + [
        f"{files[0].relative_to(folder)},class_0"
    ]
    (folder / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match=r"1 duplicate path\(s\)"):
        assert len(load_dataset(folder / "list.csv", cache=False)) == len(files)


def _gzip_idx_pair(tmp_path: Path, n: int, side: int, body: bytes) -> Path:
    images = tmp_path / "big-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(idx_header(2051, n, side, side) + body))
    (tmp_path / "big-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(2049, n) + bytes(n % 256)))
    return images


def test_gzip_idx_promising_10gb_is_refused_from_its_header(tmp_path: Path) -> None:
    # 13.8 M images of 28x28 = 10.8 GB promised by a file of a few hundred bytes whose body is not
    # even valid: the refusal names the promise (made before any body byte is inflated).
    images = _gzip_idx_pair(tmp_path, 13_800_000, 28, b"")
    raw = bytearray(images.read_bytes())
    raw[-8:-4] = b"\0\0\0\0"  # break the gzip CRC: decoding the body would report that instead
    images.write_bytes(bytes(raw))
    res = run_cli("data", "inspect", str(images), env={"GANAUG_MAX_DATASET_BYTES": str(20 * 10**9)})
    one_line_error(res, str(images), "10.8 GB", "gzip file can hold")
    res = run_cli("data", "inspect", str(images), env={"GANAUG_MAX_DATASET_BYTES": "1000000"})
    one_line_error(res, str(images), "10.8 GB in memory, over the 1.0 MB limit")


def test_idx_labels_count_is_checked_before_either_body_is_read(tmp_path: Path) -> None:
    images = _gzip_idx_pair(tmp_path, 10, 4, bytes(160))
    labels = tmp_path / "big-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_header(2049, 3_000_000_000)))  # promises 3 GB of labels
    res = run_cli("data", "inspect", str(images))
    one_line_error(res, "10 images but", "3000000000 labels")


# -- plugins -------------------------------------------------------------------------------------
HOOK_PLUGINS = {
    "empty_image": (
        "def ganaug_transform(image):\n    return image[:0, :0], []\n",
        "'empty_image': ganaug_transform returned an empty image",
    ),
    "odd_applied": (
        "def ganaug_transform(image):\n    return image, [{'op': object()}]\n",
        "'odd_applied': ganaug_transform returned applied transforms that are not JSON",
    ),
    "clear_summary": (
        "def ganaug_finish(context, summary):\n    summary.clear()\n",
        "'clear_summary': ganaug_finish removed summary[",
    ),
    "odd_summary": (
        "def ganaug_finish(context, summary):\n    summary['odd_summary'] = {1, 2}\n",
        "'odd_summary': ganaug_finish left a summary that is not JSON",
    ),
    "rename_classes": (
        "def ganaug_configure(context):\n    context.classes[0] = 'zzz'\n",
        "'rename_classes': ganaug_configure changed context.classes",
    ),
    "exits": (
        "import sys\ndef ganaug_finish(context, summary):\n    sys.exit(0)\n",
        "plugin 'exits' failed in ganaug_finish: SystemExit",
    ),
}


@pytest.mark.parametrize("name", ["empty_image", "odd_applied", "odd_summary", "rename_classes"])
def test_plugin_results_that_break_the_writer_are_named_and_nothing_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: Path, images: Path, name: str
) -> None:
    from ganaug.augment import augment_dataset

    source, message = HOOK_PLUGINS[name]
    write_module(tmp_path / "site", name, source)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    out = tmp_path / "out"
    with pytest.raises(PluginError, match=re.escape(message)):
        augment_dataset(images, weights, out, plugins=[name], strategy=1.0)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp folder left


@pytest.mark.parametrize("name", ["clear_summary", "exits"])
def test_finish_hook_that_clears_the_summary_or_exits_fails_without_publishing(
    tmp_path: Path, weights: Path, images: Path, name: str
) -> None:
    source, message = HOOK_PLUGINS[name]
    write_module(tmp_path / "site", name, source)
    out = tmp_path / "out"
    res = run_cli("augment", str(images), "-g", str(weights), "--out", str(out), "--plugin", name, "-q",
                  env={"PYTHONPATH": str(tmp_path / "site")})  # fmt: skip
    one_line_error(res, message)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_plugin_print_does_not_corrupt_json_output(tmp_path: Path, weights: Path, images: Path) -> None:
    write_module(
        tmp_path / "site",
        "chatty",
        """
        print("chatty imported")
        def ganaug_plan(class_counts, options):
            print("chatty plans")
        def ganaug_finish(context, summary):
            print("chatty finished")
        """,
    )
    res = run_cli("augment", str(images), "-g", str(weights), "--out", str(tmp_path / "out"), "--json",
                  "--plugin", "chatty", env={"PYTHONPATH": str(tmp_path / "site")})  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"]["after"] == {"a": 4, "b": 4, "c": 4}
    assert all(f"chatty {w}" in res.stderr for w in ("imported", "plans", "finished"))


def write_dist(site: Path, dist: str, ep: str, module: str, source: str) -> None:
    """A fake installed distribution ``dist`` 1.0 whose entry point ``ep`` (group ganaug) is ``module``."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ganaug]\n{ep} = {module}\n")
    write_module(site, module, source)


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    """Two installed plugins: 'badsig' (a hook with a wrong signature) and 'hello' (a command)."""
    site = tmp_path / "site"
    write_dist(site, "badsig_dist", "badsig", "badsig_mod",
               "def ganaug_plan(class_counts, options, nonsense):\n    return None\n")  # fmt: skip
    write_dist(
        site,
        "hello_dist",
        "hello",
        "hello_mod",
        """
        import click

        def ganaug_register_commands(cli):
            @click.command("say-hello")
            def hello():
                click.echo("hello from a plugin")
            cli.add_command(hello)
        """,
    )
    return site


def test_broken_installed_plugin_is_listed_and_marked(broken_site: Path) -> None:
    env = {"PYTHONPATH": str(broken_site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""}
    res = run_cli("plugins", "list", "--json", env=env)
    assert res.returncode == 1
    infos = {i["name"]: i for i in json.loads(res.stdout)}
    assert {"plugins.writers", "plugins.strategies", "hello", "badsig"} <= set(infos)
    assert "nonsense" in infos["badsig"]["error"] and "error" not in infos["hello"]
    assert "error: plugin 'badsig' is invalid" in res.stderr
    text = run_cli("plugins", "list", env=env)
    assert text.stdout.splitlines()[0].split() == ["NAME", "VERSION", "ORIGIN", "HOOKS"]
    assert any(line.startswith("badsig") and "BROKEN" in line for line in text.stdout.splitlines())
    ok = run_cli("plugins", "list", env={**env, "GANAUG_DISABLE_PLUGINS": "badsig"})
    assert ok.returncode == 0, ok.stderr
    assert "badsig" not in ok.stdout


def test_other_plugins_commands_still_work_next_to_a_broken_one(broken_site: Path) -> None:
    res = run_cli("say-hello", env={"PYTHONPATH": str(broken_site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello from a plugin"
    assert "warning: plugin 'badsig' is invalid" in res.stderr


def test_augment_names_the_broken_plugin_and_the_way_out(
    tmp_path: Path, broken_site: Path, weights: Path, images: Path
) -> None:
    env = {"PYTHONPATH": str(broken_site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""}
    out = tmp_path / "out"
    args = ("augment", str(images), "-g", str(weights), "--out", str(out), "-q")
    res = run_cli(*args, env=env)
    one_line_error(
        res, "plugin 'badsig'", "GANAUG_DISABLE_PLUGINS=badsig", "GANAUG_DISABLE_PLUGIN_AUTOLOAD=1"
    )
    assert not out.exists()
    res = run_cli(*args, env={**env, "GANAUG_DISABLE_PLUGINS": "badsig"})
    assert res.returncode == 0, res.stderr
    assert "badsig" not in {p["name"] for p in json.loads((out / "summary.json").read_text())["plugins"]}


def test_disable_by_name_also_skips_a_plugins_module(tmp_path: Path) -> None:
    write_module(tmp_path / "site", "boom_mod", "raise RuntimeError('boom at import')\n")
    env = {"PYTHONPATH": str(tmp_path / "site"), "GANAUG_PLUGINS": "boom_mod"}
    one_line_error(run_cli("plugins", "list", env=env), "'boom_mod'", "boom at import")
    res = run_cli("plugins", "list", env={**env, "GANAUG_DISABLE_PLUGINS": "boom_mod"})
    assert res.returncode == 0 and "boom_mod" not in res.stdout


# -- bounded memory ------------------------------------------------------------------------------
def test_huge_strategy_is_refused_before_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: Path, images: Path
) -> None:
    from ganaug.augment import augment_dataset

    out = tmp_path / "out"
    res = run_cli("augment", str(images), "-g", str(weights), "--out", str(out), "--strategy", "100000000000")
    one_line_error(res, "images, over the limit of 10000000 per dataset", "GANAUG_MAX_OUTPUT_IMAGES", code=2)
    assert not out.exists()
    monkeypatch.setenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("GANAUG_MAX_OUTPUT_IMAGES", "20")  # 7 real + 14 synthetic (ratio 2)
    with pytest.raises(UsageError, match="--strategy 2.0 asks for 21 images, over the limit of 20"):
        augment_dataset(images, weights, out, strategy=2.0)
    assert not out.exists()
    monkeypatch.setenv("GANAUG_MAX_OUTPUT_IMAGES", "21")
    assert sum(augment_dataset(images, weights, out, strategy=2.0)["counts"]["after"].values()) == 21


def test_synthetic_units_of_a_huge_plan_are_computed_lazily() -> None:
    from ganaug.augment import SYNTHETIC_UNIT, _synthetic_units

    units = _synthetic_units([10**11, 0, 5], 10.0)
    per_class = -(-(10**11) // SYNTHETIC_UNIT)
    assert len(units) == per_class + 1
    assert units[0] == (0, SYNTHETIC_UNIT, 0, 10 * SYNTHETIC_UNIT)
    assert units[per_class] == (2, 5, 10 * (10**11), 50)  # the 5-image class starts after all rows
    part = units.select(range(3, 5))
    assert list(part) == [units[3], units[4]]


def test_huge_sample_is_refused_before_allocating_labels(tmp_path: Path, weights: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("sample", str(weights), "--out", str(out), "-n", "100000000")
    one_line_error(res, "-n 100000000 for 3 classes asks for 300000000 images", code=2)
    assert not out.exists()


def test_npz_output_over_the_memory_limit_is_refused_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: Path, images: Path
) -> None:
    from ganaug.sampling import sample_to_dataset

    out = tmp_path / "out"
    env = {"GANAUG_MAX_DATASET_BYTES": "500"}  # 7 real + 5 synthetic 8x8 images = 768 bytes
    res = run_cli("augment", str(images), "-g", str(weights), "--out", str(out), "--format", "npz", env=env)
    one_line_error(res, "--format npz holds every image in memory", "GANAUG_MAX_DATASET_BYTES", code=2)
    assert not out.exists()
    monkeypatch.setenv("GANAUG_MAX_DATASET_BYTES", "500")
    with pytest.raises(UsageError, match="--format npz holds every image in memory: 30 images of 8x8x1"):
        sample_to_dataset(weights, out, 10, fmt="npz")
    assert not out.exists()
    sample_to_dataset(weights, out, 2, fmt="npz")
    with np.load(out / "data.npz") as npz:  # the streamed NPZ reads back as any other
        assert npz["images"].shape == (6, 8, 8, 1) and npz["labels"].tolist() == [0, 0, 1, 1, 2, 2]
        assert npz["classes"].tolist() == CLASSES


def test_lazy_sample_labels_match_the_class_by_class_order() -> None:
    from ganaug.sampling import _LazyLabels

    labels = _LazyLabels(np.array([2, 0]), 3)
    assert len(labels) == 6
    assert labels[0:6].tolist() == [2, 2, 2, 0, 0, 0]
    assert labels[2:5].tolist() == [2, 0, 0]
    with pytest.raises(Exception, match="n_per_class must be >= 0"):
        _LazyLabels(np.array([0]), -1)


def test_load_dataset_still_raises_data_error_type(tmp_path: Path) -> None:
    """The hostile-file refusals above are DataErrors in the library too (not only CLI lines)."""
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((2, 0, 4), np.uint8), labels=np.array([0, 1]))
    with warnings.catch_warnings(), pytest.raises(DataError, match="0-pixel"):
        load_dataset(path, cache=False)
    assert os.listdir(tmp_path) == ["d.npz"]
