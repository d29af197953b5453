"""``eval uplift --tune``: the validation split, the choice and its recommendation, the policy file
round trip into ``augment``, and proof that tuning never looks at the test split."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from conftest import export_random_generator, pattern_images
from conftest import run_cli_one_thread as run_cli

from ganaug.data import ImageDataset, load_dataset
from ganaug.errors import UsageError
from ganaug.eval.common import draw_subset
from ganaug.evaluate import MixPolicy, uplift
from ganaug.tune import (
    augment_options,
    choose_policy,
    default_grid,
    load_policy_file,
    stratified_split,
    write_policy_file,
)

CLASSES = ["c0", "c1", "c2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    x, y = pattern_images([12, 12, 12], size=16, seed=0)
    np.savez(root / "train.npz", images=x, labels=y, classes=np.array(CLASSES))
    return {
        "root": root,
        "train": root / "train.npz",
        "arrays": (x, y),
        "generator": export_random_generator(root / "gen", CLASSES, 16, 0, "tune"),
    }


def test_stratified_split_is_disjoint_complete_and_per_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3])
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert not set(tr) & set(va) and sorted([*tr, *va]) == list(range(len(labels)))
    assert np.bincount(labels[va], minlength=4).tolist() == [2, 1, 1, 0]  # >= 1 where a class has 2+
    assert np.array_equal(stratified_split(labels, 0.2, seed=0)[1], va)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=1)[1], va)
    with pytest.raises(UsageError):
        stratified_split(labels, 1.0, seed=0)


def _grid():
    return {
        "oversample": MixPolicy(name="oversample", strategy=0, balance=True),
        "gan": MixPolicy(name="gan", strategy=1.0),
        "gan-soft": MixPolicy(name="gan-soft", strategy=4.0, synthetic_share=0.25, soft_labels=True),
    }


def test_recommendation_when_a_gan_policy_wins():
    scores = {
        "real": [80.0, 81.0, 80.0],
        "oversample": [81.0, 81.0, 81.0],
        "gan": [79.0, 80.0, 79.0],
        "gan-soft": [82.5, 82.4, 82.6],
    }
    choice = choose_policy(scores, _grid(), "balanced_accuracy")
    assert choice["choice"] == "gan-soft" and choice["best_no_gan"] == "oversample"
    assert choice["margin"] == pytest.approx(1.5)
    assert choice["recommendation"].startswith("GAN samples with policy `gan-soft` (")
    assert (
        "+1.5 points of balanced accuracy on validation over the best no-GAN arm `oversample`"
        in (choice["recommendation"])
    )


def test_a_gan_policy_ahead_within_the_seeds_noise_is_not_recommended():
    # the measured leak-free tune on 100 Fashion-MNIST images per class: soft-label GAN policy vs its
    # distillation control per seed (validation); on test the GAN policy lost 0.6 points
    scores = {"real": [85.0, 83.5, 83.5], "oversample": [84.5, 84.0, 84.0], "gan-soft": [85.5, 84.5, 85.5]}
    choice = choose_policy(scores, _grid(), "accuracy")
    assert choice["choice"] == "oversample" and choice["best_gan"] == "gan-soft"
    assert choice["margin"] == pytest.approx(1.0)
    lo, hi = choice["margin_ci95"]
    assert lo < 0 < hi and lo == pytest.approx(-0.24, abs=0.01)
    assert "within the seeds' noise, 95% interval over seeds -0.2 to +2.2" in choice["recommendation"]
    assert choice["recommendation"].startswith("use oversampling")
    one = choose_policy({"real": [84.0], "gan-soft": [85.0]}, _grid(), "accuracy")
    assert one["choice"] == "gan-soft" and "one seed: no noise estimate" in one["recommendation"]


def test_paired_image_interval_needs_more_than_a_handful_of_differing_images():
    from ganaug.metrics import paired_image_interval

    y = np.zeros(40, int)
    a, b = np.ones(40, int), np.ones(40, int)
    a[:5] = b[:5] = 0  # both right on 5 images
    same = paired_image_interval(y, b, a, 10)
    assert same[0] < 0 < same[1] and same[0] == pytest.approx(-same[1])
    b[5:10] = 0  # b is also right on 5 more: 5 differing images, all for b
    # Agresti-Min by hand: (5.5 - 0.5) / 42 +- 1.96 * sqrt((6 - 25/42) / 42^2)
    assert paired_image_interval(y, b, a, 10) == pytest.approx([1.0558, 22.7537], abs=1e-3)
    b[9] = 1  # four differing images: not enough
    assert paired_image_interval(y, b, a, 10)[0] < 0
    # balanced: the average of per-class differences, so one class's gain counts for 1/K of it
    y2 = np.array([0] * 20 + [1] * 20)
    a2, b2 = np.where(y2 == 0, 1, 1), y2.copy()  # b right on all of class 0, a on none; both right on 1
    lo, hi = paired_image_interval(y2, b2, a2, 2, balanced=True)
    assert lo > 0 and (lo + hi) / 2 == pytest.approx(50.0 * 20 / 22, abs=1e-6)


@pytest.mark.parametrize(
    ("scores", "blocked", "said", "kept", "clear_said"),
    [
        # one seed, one validation image of 40 apart: only the image interval exists
        ({"real": [84.0], "gan-soft": [86.5]}, "real",
         "within the noise of one seed's validation images, 95% interval over the validation images "
         "-2.0 to +7.0.", "gan-soft", "not the draw of the subset"),
        # measured at 20/class: one or two of 40 images ahead on every seed; -0.3 on test
        ({"real": [75.0, 62.5, 67.5], "oversample": [72.5, 65.0, 72.5], "gan": [75.0, 70.0, 77.5]},
         "oversample",
         "within the noise of the validation images, 95% interval over seeds +0.6 to +7.8; over the "
         "validation images -2.0 to +7.0.", "gan", "over the validation images +0.5 to +8.0"),
    ],
)  # fmt: skip
def test_the_image_interval_must_clear_zero_too(scores, blocked, said, kept, clear_said):
    choice = choose_policy(scores, _grid(), "accuracy", image_ci=lambda b, a: [-2.0, 7.0])
    assert choice["choice"] == blocked and choice["margin_ci95_images"] == [-2.0, 7.0]
    assert choice["recommendation"].endswith(said)
    clear = choose_policy(scores, _grid(), "accuracy", image_ci=lambda b, a: [0.5, 8.0])
    assert clear["choice"] == kept and clear_said in clear["recommendation"]


def test_validation_interval_pools_the_seeds_images():
    from ganaug.eval.validation import validation_interval
    from ganaug.metrics import paired_image_interval

    def seed(labels, a, b):
        return {"validation_labels": labels, "arms": {"a": {"predictions": a}, "b": {"predictions": b}}}

    seeds = [seed([0, 1, 1], [0, 0, 1], [0, 1, 1]), seed([1, 0], [1, 1], [1, 0])]
    pooled = validation_interval(seeds, 2, "balanced_accuracy")("b", "a")
    expected = paired_image_interval([0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], 2, balanced=True)
    assert pooled == pytest.approx(expected)
    assert validation_interval([{"arms": {}}], 2, "accuracy") is None  # runs that kept no predictions


def test_recommendation_when_every_gan_policy_is_worse():
    scores = {"real": [80.0, 80.0], "oversample": [83.0, 83.0], "gan": [79.0, 80.0], "gan-soft": [82.0, 82.0]}
    choice = choose_policy(scores, _grid(), "accuracy")
    assert choice["choice"] == "oversample" and choice["best_gan"] == "gan-soft"
    assert choice["recommendation"] == (
        "use oversampling (class-balanced batches) (`oversample`) without GAN samples: every GAN policy "
        "was worse on validation (best GAN policy `gan-soft`: -1.0 points of accuracy)."
    )
    tie = choose_policy({"real": [80.0], "gan": [80.0]}, _grid(), "accuracy")
    assert tie["choice"] == "real" and "no better" in tie["recommendation"]


def test_default_grids_have_baselines_gated_arms_and_shared_controls():
    for imbalanced in (False, True):
        grid = default_grid(imbalanced)
        names = [p.name for p in grid]
        assert len(names) == len(set(names))
        assert any(p.min_class_fidelity == 0.8 and p.uses_gan() for p in grid)
    balanced = {p.name: p for p in default_grid(False)}
    # the gated soft-label arm costs no extra control: its control is gan-soft's
    gated, plain = balanced["gan-soft-cf80"].control(), balanced["gan-soft"].control()
    assert gated == dataclasses.replace(plain, name=gated.name)
    imbalanced = [p for p in default_grid(True) if not p.uses_gan()]
    assert {p.name for p in imbalanced} == {"oversample", "balanced-softmax"}
    assert not any(p.filter for p in default_grid(True))  # ~10 candidates per kept image there


def test_the_progress_line_names_the_candidates_and_where_they_come_from():
    """``--policy`` arms replace the default grid: the first progress line says which it is."""
    from ganaug.eval.spec import UpliftConfig
    from ganaug.eval.validation import tune_candidates

    balanced = UpliftConfig(counts=[6, 6], seeds=[0], policies=[])
    grid, said = tune_candidates(balanced)
    assert [p.name for p in grid] == [p.name for p in default_grid(False)]
    assert (
        said
        == f"tune: {len(grid)} candidates from the default grid (--policy arms replace it): "
        + ", ".join(p.name for p in grid)
    )
    mine = UpliftConfig(
        counts=[6, 6], seeds=[0], tune_grid=[MixPolicy(name="a")], policies=[MixPolicy(name="b")]
    )
    grid, said = tune_candidates(mine)
    assert said == "tune: 2 candidates as given (without --policy arms: the default grid): a, b"
    imbalanced = UpliftConfig(counts=[9, 3], seeds=[0], policies=[])
    assert tune_candidates(imbalanced)[0][0].name == "oversample"


def test_policy_file_round_trip_into_augment(files, tmp_path):
    policy = MixPolicy(
        name="tuned", strategy=0.5, filter=True, min_confidence=0.3, soft_labels=True, min_class_fidelity=0.0
    )
    path = write_policy_file(tmp_path / "tuned_policy.json", policy, recommendation="x")
    assert load_policy_file(path) == policy
    body = json.loads(path.read_text())
    assert body["augment"] == augment_options(policy) and body["training"]["synthetic_share"] is None
    out = tmp_path / "aug"
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out", str(out),
                   "--policy-file", str(path), "--format", "npz", "-O", "confidence_steps=10", "-q",
                   "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["strategy"] == 0.5 and summary["filters"] == ["confidence", "class-fidelity"]
    assert summary["filter_settings"]["confidence"]["min_confidence"] == 0.3
    assert summary["filter_settings"]["class-fidelity"]["min_class_fidelity"] == 0.0
    assert summary["soft_labels"] is True and sum(summary["counts"]["synthetic"].values()) > 0
    # an explicit flag beats the file
    out2 = tmp_path / "aug2"
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out", str(out2),
                   "--policy-file", str(path), "--strategy", "0", "--format", "npz",
                   "-O", "confidence_steps=10", "-q", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["synthetic"] == {c: 0 for c in CLASSES}
    # the training half of a policy is named when augment applies the file
    shared = write_policy_file(
        tmp_path / "shared.json", MixPolicy(name="s", strategy=0.5, synthetic_share=0.25)
    )
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out",
                   str(tmp_path / "a3"), "--policy-file", str(shared), "--format", "npz")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "when training on OUT also synthetic_share=0.25 (its 'training' options" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: {name: x, sharee: 0.3}\n")
    with pytest.raises(UsageError, match="unknown policy field\\(s\\) sharee"):
        load_policy_file(bad)


def test_a_policy_file_carries_the_teacher_it_was_chosen_with(files, tmp_path):
    """``eval uplift --tune --teacher balanced`` chose a soft-label policy with that teacher:
    ``augment --policy-file`` labels with the same kind of teacher unless --teacher says otherwise."""
    soft = MixPolicy(name="tuned", strategy=0.5, soft_labels=True)
    path = write_policy_file(tmp_path / "tuned_policy.json", soft, teacher="balanced")
    assert json.loads(path.read_text())["augment"]["teacher"] == "balanced"
    for policy, teacher in ((MixPolicy(name="hard", strategy=0.5), "balanced"), (soft, "t_{seed}.onnx")):
        other = write_policy_file(tmp_path / "other.json", policy, teacher=teacher)
        assert "teacher" not in json.loads(other.read_text())["augment"]
    common = ["augment", str(files["train"]), "-g", str(files["generator"]), "--policy-file", str(path),
              "--format", "npz", "-O", "confidence_steps=10", "-q", "--json"]  # fmt: skip
    proc = run_cli(*common, "--out", str(tmp_path / "a1"))
    assert proc.returncode == 0, proc.stderr
    assert "class-balanced batches" in json.loads(proc.stdout)["teacher"]["classifier"]
    missing = tmp_path / "mine.onnx"
    proc = run_cli(*common, "--out", str(tmp_path / "a2"), "--teacher", str(missing))  # the flag wins
    assert proc.returncode == 2 and f"--teacher: file not found: {missing}" in proc.stderr


def test_a_policy_file_with_a_balanced_filter_filters_with_one_in_augment(files, tmp_path):
    """``balanced_filter`` is an augment setting of the policy: ``augment --policy-file`` gates
    with a classifier trained with class-balanced batches unless --filter-classifier says otherwise."""
    gated = MixPolicy(name="gated", strategy=0.5, min_class_fidelity=0.0, balanced_filter=True)
    path = write_policy_file(tmp_path / "tuned_policy.json", gated)
    assert json.loads(path.read_text())["augment"]["filter_classifier"] == "balanced"
    common = ["augment", str(files["train"]), "-g", str(files["generator"]), "--policy-file", str(path),
              "--format", "npz", "-O", "confidence_steps=10", "-q", "--json"]  # fmt: skip
    proc = run_cli(*common, "--out", str(tmp_path / "a1"))
    assert proc.returncode == 0, proc.stderr
    gate = json.loads(proc.stdout)["filter_settings"]["class-fidelity"]
    assert gate["classifier"] == "trained on the real data with class-balanced batches (10 steps)"
    missing = tmp_path / "mine.onnx"
    proc = run_cli(*common, "--out", str(tmp_path / "a2"), "--filter-classifier", str(missing))  # flag wins
    assert proc.returncode == 2 and f"--filter-classifier: file not found: {missing}" in proc.stderr


def test_a_wrong_policy_file_gets_one_line_that_says_what_is_wrong(files, tmp_path):
    cases = {
        "report.json": ('{"kind": "ganaug.uplift", "arms": [], "command": "x"}',
                        "a 'ganaug.uplift' file, not a policy file"),
        "summary.json": ('{"counts": {}, "classes": [], "strategy": 1.0, "filters": []}',
                         "not a policy file (unknown fields classes, counts, filters)"),
        "name.json": ('{"policy": "gan-bs"}', "'policy' must be a mapping of policy fields"),
        "typed.json": ('{"strategy": 1.0, "min_confidence": "high", "filter": true}',
                       "policy 'gan': min_confidence must be a number, got 'high'"),
        "switch.yaml": ("policy: {name: p, fresh: maybe, strategy: 4, synthetic_share: 0.25}",
                        "policy 'p': fresh must be true or false, got 'maybe'"),
    }  # fmt: skip
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match=re.escape(f"policy file {tmp_path / name}: {message}")):
            load_policy_file(tmp_path / name)
    with pytest.raises(UsageError, match="a folder, not a policy file"):
        load_policy_file(tmp_path)
    out = tmp_path / "aug"
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out", str(out),
                   "--policy-file", str(tmp_path / "typed.json"))  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not out.exists()
    assert proc.stderr.strip().splitlines()[-1].endswith("min_confidence must be a number, got 'high'")
    # a strategy no plugin understands is blamed on the file that set it, not on --strategy
    (tmp_path / "strategy.json").write_text('{"policy": {"name": "odd", "strategy": "most"}}')
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out", str(out),
                   "--policy-file", str(tmp_path / "strategy.json"))  # fmt: skip
    assert proc.returncode == 2 and not out.exists()
    last = proc.stderr.strip().splitlines()[-1]
    blamed = f"error: {tmp_path / 'strategy.json'}: policy 'odd': strategy 'most' is not understood"
    assert last.startswith(blamed)


def test_augment_with_a_no_gan_policy_says_where_the_policy_applies(files, tmp_path):
    path = write_policy_file(tmp_path / "p.json", MixPolicy(name="tuned", strategy=0, balance=True))
    out = tmp_path / "aug"
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out", str(out),
                   "--policy-file", str(path), "--format", "npz")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = "policy 'tuned' uses no GAN samples: oversampling (class-balanced batches), applied when"
    assert said in proc.stderr
    assert "--strategy 0.5" not in proc.stderr  # no hint to add the samples the policy left out
    proc = run_cli("augment", str(files["train"]), "-g", str(files["generator"]), "--out",
                   str(tmp_path / "a2"), "--policy-file", str(path), "--strategy", "0.5",
                   "--format", "npz")  # fmt: skip
    assert proc.returncode == 0 and "--strategy 0.5 adds them anyway" in proc.stderr


class _Poisoned(ImageDataset):
    """A test split whose use raises: proof that tuning never reads it."""

    def __getattribute__(self, name):
        if name in ("images", "labels", "classes", "subset", "sample_per_class", "source"):
            raise AssertionError("the test split was touched")
        return super().__getattribute__(name)


def test_tuning_never_touches_the_test_split(files, tmp_path):
    x, y = files["arrays"]
    test = ImageDataset(x[:6].copy(), y[:6].copy(), CLASSES)
    test.__class__ = _Poisoned
    grid = [MixPolicy(name="gan", strategy=1.0), MixPolicy(name="soft", strategy=1.0, soft_labels=True)]
    out = tmp_path / "t"
    with pytest.raises(AssertionError, match="test split was touched"):
        uplift(ImageDataset(x, y, CLASSES), test, per_class_n=6, seeds=2, out_dir=out,
               generator=files["generator"], tune_generator=files["generator"], tune=True,
               tune_grid=grid, classifier_steps=6, classifier_batch_size=8, quality=False)  # fmt: skip
    # every seed was tuned and the choice written before the test split was first used
    for seed in (0, 1):
        tuned = json.loads((out / f"seed_{seed}" / "tune.json").read_text())
        assert set(tuned["arms"]) == {"real", "gan", "soft", "soft-control"}
        assert tuned["n_train"] + tuned["n_validation"] == 18
    assert json.loads((out / "tuned_policy.json").read_text())["kind"] == "ganaug.policy"


def test_eval_uplift_tune_cli(files, tmp_path):
    out = tmp_path / "cli"
    common = ["eval", "uplift", str(files["train"]), "--per-class", "6", "--seeds", "1", "-g",
              str(files["generator"]), "--classifier-steps", "6", "--classifier-batch-size", "8",
              "--no-quality", "--out", str(out), "-q"]  # fmt: skip
    tuning = ["--tune-generator", str(files["generator"])]
    proc = run_cli(*common, "--tune", *tuning, "--policy", "name=gan,strategy=1", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "the GAN training options are ignored" in proc.stderr  # both generators were given
    # without --tune-generator they train the tuning GAN: no such warning (a usage error stops it early)
    trains = run_cli(*common, "--tune", "--steps", "2", "--teacher", str(tmp_path / "none.onnx"))
    assert trains.returncode == 2 and "--teacher not found" in trains.stderr
    assert "ignored" not in trains.stderr
    assert proc.stdout.startswith("recommendation: ")
    report = json.loads((out / "report.json").read_text())
    assert report["arms"] is None and set(report["tune"]["validation"]) == {"real", "gan"}
    assert (out / "report.md").read_text().rstrip().endswith(report["recommendation"])
    policy = load_policy_file(out / "tuned_policy.json")
    assert policy.name == "tuned" and (policy.uses_gan() == (report["tune"]["choice"] == "gan"))
    missing = run_cli(*common)
    assert missing.returncode == 2 and "--test" in missing.stderr
    # "balanced" is a teacher, not a file: trained on the tuning split's train part only
    soft = ["--policy", "name=soft,strategy=1,soft_labels=true", "--teacher", "balanced"]
    balanced = run_cli(*common, "--out", str(tmp_path / "bal"), "--tune", *tuning, *soft)
    assert balanced.returncode == 0, balanced.stderr
    assert (tmp_path / "bal" / "seed_0" / "tune" / "teacher_classifier.safetensors").is_file()
    alone = run_cli(*common, *tuning, "--test", str(files["train"]))
    assert alone.returncode == 2 and "--tune-generator needs --tune" in alone.stderr


def test_the_tuning_generator_never_sees_the_validation_images(files, tmp_path):
    """Without --tune-generator, each seed's tuning GAN is trained on the train part only, even when
    --generator (which saw the whole subset) is given for the test phase."""
    x, y = files["arrays"]
    out = tmp_path / "leak"
    gan = {"arch": "mlp", "steps": 2, "batch_size": 4, "g_width": 8, "d_width": 8, "z_dim": 8, "snapshots": 0}
    uplift(ImageDataset(x, y, CLASSES), ImageDataset(x[::4], y[::4], CLASSES), per_class_n=6, seeds=1,
           out_dir=out, generator=files["generator"], gan_options=gan, tune=True,
           tune_grid=[MixPolicy(name="gan", strategy=1.0)], classifier_steps=6,
           classifier_batch_size=8, quality=False)  # fmt: skip
    tuned = json.loads((out / "seed_0" / "tune.json").read_text())
    assert tuned["gan"]["trained"] and tuned["gan"]["source"].endswith("tune/gan")
    seen = load_dataset(out / "seed_0" / "tune" / "gan" / "train_data.npz")
    assert len(seen) == tuned["n_train"] == 18 - tuned["n_validation"]
    drawn = draw_subset(ImageDataset(x, y, CLASSES), [6, 6, 6], 0)
    _tr, val = stratified_split(drawn.labels, 0.2, 0)
    val_images = {drawn.images[i].tobytes() for i in val}
    assert not val_images & {img.tobytes() for img in seen.images}
    md = (out / "report.md").read_text()
    assert "a generator trained per seed on the train part only (`seed_N/tune/gan`)" in md


def test_the_validation_table_names_candidates_that_trained_exactly_as_another(files, tmp_path):
    """The test generator chose no temperature (1.0): ``temperature=1.0`` is the same candidate."""
    x, y = files["arrays"]
    out = tmp_path / "same"
    grid = [MixPolicy(name="gan", strategy=1.0), MixPolicy(name="gan-t1", strategy=1.0, temperature=1.0)]
    lines: list[str] = []
    rep = uplift(ImageDataset(x, y, CLASSES), None, per_class_n=6, seeds=2, out_dir=out,
                 tune_generator=files["generator"], tune=True, tune_grid=grid, classifier_steps=6,
                 classifier_batch_size=8, quality=False, echo=lines.append)  # fmt: skip
    assert not any(line.startswith("tuned:") for line in lines)  # no test phase: said once, at the end
    assert "tune: 2 candidates as given (without --policy arms: the default grid): gan, gan-t1" in lines
    assert rep["tune"]["same_as"] == {"gan-t1": {"gan": [0, 1]}}
    assert rep["tune"]["validation"]["gan-t1"] == rep["tune"]["validation"]["gan"]
    md = (out / "report.md").read_text()
    assert "| gan-t1 (seeds 0, 1: same training as gan) |" in md
    assert "| real images, classical augmentation |" in md
    assert "+ GAN samples — strategy 1.0, temperature 1.0 |" in md


def test_a_one_seed_tune_judges_the_margin_on_its_validation_images(files, tmp_path):
    x, y = files["arrays"]
    lines: list[str] = []
    out = tmp_path / "one"
    grid = [MixPolicy(name="gan", strategy=1.0)]
    rep = uplift(ImageDataset(x, y, CLASSES), ImageDataset(x[::4], y[::4], CLASSES), per_class_n=6,
                 seeds=1, out_dir=out, generator=files["generator"], tune_generator=files["generator"],
                 tune=True, tune_grid=grid, classifier_steps=6, classifier_batch_size=8,
                 quality=False, echo=lines.append)  # fmt: skip
    assert f"tuned: {rep['recommendation']}" in lines  # said before the test phase
    md = (out / "report.md").read_text()
    assert f"the generator given as `--tune-generator` (`{files['generator']}`)" in md
    assert md.rstrip().endswith(rep["recommendation"])
    seed = json.loads((out / "seed_0" / "tune.json").read_text())
    labels = seed["validation_labels"]
    assert len(labels) == seed["n_validation"] == 3
    for arm in ("real", "gan"):
        hits = np.equal(seed["arms"][arm]["predictions"], labels).mean()
        assert hits == pytest.approx(seed["arms"][arm]["accuracy"])
    lo, hi = rep["tune"]["margin_ci95"]
    assert lo < rep["tune"]["margin"] < hi and "no noise estimate" not in rep["recommendation"]


def test_a_gan_policy_that_drew_no_gan_image_is_no_gan_candidate(files, tmp_path):
    """A strategy that asks for no image (as a gate that withholds every class leaves it) makes the
    policy train as real-only: it must not stand in for "the best GAN policy"."""
    scores = {"real": [80.0, 80.0], "oversample": [81.0, 81.0], "gated": [81.0, 81.0], "gan": [79.0, 79.0]}
    grid = {**_grid(), "gated": MixPolicy(name="gated", strategy=1.0, min_class_fidelity=0.8)}
    choice = choose_policy(scores, grid, "accuracy", drew_none={"gated"})
    assert choice["best_gan"] == "gan" and "best GAN policy `gan`: -2.0 points" in choice["recommendation"]
    x, y = files["arrays"]
    tuned = [
        MixPolicy(name="gan", strategy=1.0, use_real=False),  # random samples only: the worst arm
        MixPolicy(name="asks-none", strategy={"c0": 5}),  # c0 has 5 train images: nothing to add
    ]
    rep = uplift(ImageDataset(x, y, CLASSES), None, per_class_n=6, seeds=1, out_dir=tmp_path / "n",
                 tune_generator=files["generator"], tune=True, tune_grid=tuned, classifier_steps=6,
                 classifier_batch_size=8, quality=False)  # fmt: skip
    assert rep["tune"]["best_gan"] == "gan" and "asks-none" in rep["tune"]["validation"]
