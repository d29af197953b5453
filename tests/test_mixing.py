"""Mixing that pays: soft labels, distillation controls, fresh pools, the balanced-softmax baseline,
teacher probabilities in augment outputs and GanAugDataset, thread defaults and FID/KID scale."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import export_random_generator, pattern_images
from conftest import run_cli_one_thread as run_cli

from ganaug.classifier import (
    balanced_softmax_adjustment,
    soft_cross_entropy,
    train_classifier,
)
from ganaug.data import ImageDataset
from ganaug.errors import UsageError
from ganaug.evaluate import (
    MixPolicy,
    Synthetic,
    auto_threads,
    batch_class_prior,
    mix_arrays,
    quality_report,
    uplift,
)

CLASSES = ["c0", "c1", "c2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    x, y = pattern_images([12, 12, 12], size=16, seed=0)
    xt, yt = pattern_images([6, 6, 6], size=16, seed=1)
    return ImageDataset(x, y, CLASSES), ImageDataset(xt, yt, CLASSES)


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return export_random_generator(tmp_path_factory.mktemp("gen"), CLASSES, 16, 0, "mixing")


# -- losses ----------------------------------------------------------------------------------------
def test_soft_cross_entropy_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = [0.25, 0.75]
    target = torch.tensor([[0.5, 0.5]])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))  # 0.836988...
    assert soft_cross_entropy(logits, target).item() == pytest.approx(expected, abs=1e-6)
    # a one-hot target is plain cross-entropy; KL = soft CE minus the target's entropy
    onehot = torch.tensor([[0.0, 1.0]])
    assert soft_cross_entropy(logits, onehot).item() == pytest.approx(-math.log(0.75), abs=1e-6)
    kl = F.kl_div(F.log_softmax(logits, 1), target, reduction="sum").item()
    assert kl == pytest.approx(expected - math.log(2.0), abs=1e-6)


def test_balanced_softmax_adjustment_and_batch_prior():
    labels = np.array([0, 0, 0, 1])
    prior = batch_class_prior(labels, 3)
    assert prior.tolist() == [0.75, 0.25, 0.0]
    adj = balanced_softmax_adjustment(prior)
    assert adj[:2] == pytest.approx([math.log(0.75), math.log(0.25)])
    assert adj[2] < -20  # an empty class: a very negative, finite offset
    # equal logits, true class 1: the loss on z + log prior is -log(0.25)
    z = torch.zeros(1, 2) + torch.from_numpy(adj[:2])
    assert F.cross_entropy(z, torch.tensor([1])).item() == pytest.approx(math.log(4.0), abs=1e-6)
    # class-balanced draws make the batch prior uniform (balanced softmax is then plain softmax)
    from ganaug.evaluate import class_balanced_weights

    assert batch_class_prior(labels, 2, class_balanced_weights(labels, 2)) == pytest.approx([0.5, 0.5])


def test_train_classifier_defaults_unchanged_and_new_fields_take_effect(data):
    train, _ = data
    opts = {"steps": 12, "batch_size": 8, "seed": 3}
    plain = train_classifier(train.images, train.labels, 3, **opts)
    nan_soft = np.full((len(train), 3), np.nan, np.float32)
    same = train_classifier(train.images, train.labels, 3, soft_targets=nan_soft, **opts)
    for a, b in zip(plain.model.state_dict().values(), same.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    uniform = np.full((len(train), 3), 1 / 3, np.float32)
    soft = train_classifier(train.images, train.labels, 3, soft_targets=uniform, **opts)
    assert not torch.equal(plain.model.fc2.weight, soft.model.fc2.weight)
    adjusted = train_classifier(
        train.images, train.labels, 3, logit_adjustment=np.log([0.8, 0.1, 0.1]), **opts
    )
    assert not torch.equal(plain.model.fc2.weight, adjusted.model.fc2.weight)
    with pytest.raises(UsageError, match="soft_targets"):
        train_classifier(train.images, train.labels, 3, soft_targets=uniform[:, :2], **opts)


def test_distillation_and_refresh(data):
    train, _ = data
    opts = {"steps": 9, "batch_size": 8, "seed": 0}
    teacher = train_classifier(train.images, train.labels, 3, **opts)
    student = train_classifier(train.images, train.labels, 3, teacher=teacher, distill_weight=1.0, **opts)
    assert not torch.equal(student.model.fc2.weight, teacher.model.fc2.weight)
    rounds = []

    def refresh(r):
        rounds.append(r)
        return {"images": train.images[::-1].copy(), "labels": train.labels[::-1].copy()}

    train_classifier(train.images, train.labels, 3, refresh=refresh, refresh_every=4, **opts)
    assert rounds == [1, 2]  # steps 4 and 8 of 9


# -- policies, controls ----------------------------------------------------------------------------
def test_policy_fields_parse_and_validate():
    p = MixPolicy.parse(
        "name=s,strategy=4,synthetic_share=0.25,soft_labels=true,fresh=true,loss=balanced_softmax"
    )
    assert (p.soft_labels, p.fresh, p.loss, p.uses_gan()) == (True, True, "balanced_softmax", True)
    assert not MixPolicy(name="b", strategy=0, loss="balanced_softmax").uses_gan()
    for bad in ("loss=focal", "strategy=0,soft_labels=true", "strategy=0,fresh=true", "distill_weight=0",
                "curriculum=pretrain,soft_labels=true", "min_class_fidelity=1.5"):  # fmt: skip
        with pytest.raises(UsageError):
            MixPolicy.parse(bad)


def test_class_fidelity_gate_is_a_synthetic_set_setting():
    gated = MixPolicy.parse("name=g,strategy=4,soft_labels=true,min_class_fidelity=0.8")
    assert gated.min_class_fidelity == 0.8
    assert gated.synthetic_key() != MixPolicy(name="g", strategy=4, soft_labels=True).synthetic_key()
    assert gated.augment_filters() == (["class-fidelity"], {"min_class_fidelity": 0.8})
    both = MixPolicy(filter=True, min_confidence=0.5, min_class_fidelity=0.7, near_duplicate=True)
    assert both.augment_filters() == (
        ["confidence", "class-fidelity", "near-duplicate"],
        {"min_confidence": 0.5, "min_class_fidelity": 0.7},
    )
    assert gated.control().min_class_fidelity is None  # the control has no synthetic images to gate


def test_a_withheld_class_keeps_its_share_of_the_batches(data):
    train, _ = data  # 12 real images per class
    keep = train.labels != 2  # the gate withheld class c2's 24 planned synthetic images
    syn = Synthetic(
        np.concatenate([train.images[keep]] * 2), np.concatenate([train.labels[keep]] * 2),
        info={"withheld": {"c2": 24}},
    )  # fmt: skip
    labels_all = np.concatenate([train.labels, syn.labels])
    for policy in (MixPolicy(strategy=2, synthetic_share=0.25), MixPolicy(strategy=2)):
        arm = mix_arrays(policy, train, syn, 3)
        w = arm["draw_weight"] / arm["draw_weight"].sum()
        per_class = np.bincount(labels_all, weights=w, minlength=3)
        assert per_class == pytest.approx([1 / 3] * 3)  # as without the gate: c2 is not starved
        n = len(train)
        assert np.ptp(w[:n][train.labels == 2]) == 0 and np.ptp(w[n:]) == pytest.approx(0)
    share = mix_arrays(MixPolicy(strategy=2, synthetic_share=0.25), train, syn, 3)["draw_weight"]
    assert share[len(train) :].sum() / share.sum() == pytest.approx(0.25 * 48 / 72)  # 48 of 72 planned
    ungated = Synthetic(syn.images, syn.labels)
    assert "draw_weight" not in mix_arrays(MixPolicy(strategy=2), train, ungated, 3)


def test_control_differs_only_in_the_synthetic_part(data):
    train, _ = data
    policy = MixPolicy(
        name="soft", strategy=2, synthetic_share=0.25, soft_labels=True, filter=True, loss="balanced_softmax"
    )
    control = policy.control()
    assert control.name == "soft-control" and not control.uses_gan() and control.distill_real
    kept = {
        "loss",
        "balance",
        "distill_weight",
        "use_real",
        "curriculum",
        "pretrain_fraction",
        "min_confidence",
    }
    for field in kept:
        assert getattr(control, field) == getattr(policy, field), field
    n = len(train)
    syn = Synthetic(train.images[:6], train.labels[:6], np.full((6, 3), 1 / 3, np.float32))
    arm = mix_arrays(policy, train, syn, 3)
    ctl = mix_arrays(control, train, syn, 3)
    assert len(arm["images"]) == n + 6 and np.isnan(arm["soft_targets"][:n]).all()
    assert arm["soft_targets"][n:] == pytest.approx(np.full((6, 3), 1 / 3))
    assert arm["draw_weight"][n:].sum() / arm["draw_weight"].sum() == pytest.approx(0.25)
    assert np.array_equal(ctl["images"], train.images) and np.array_equal(ctl["labels"], train.labels)
    assert ctl["distill_mask"].all() and "soft_targets" not in ctl and "draw_weight" not in ctl


def test_uplift_soft_fresh_and_rebalancing_arms(data, generator, tmp_path):
    train, test = data
    lines, warnings = [], []
    policies = [
        MixPolicy(name="soft", strategy=1, synthetic_share=0.25, soft_labels=True),
        MixPolicy(name="fresh", strategy=1, synthetic_share=0.5, fresh=True, refresh_steps=3),
        MixPolicy(name="bsoftmax", strategy=0, loss="balanced_softmax"),
        MixPolicy(name="gate", strategy=1, min_class_fidelity=1.0),
    ]
    rep = uplift(train, test, imbalance=[8, 3, 5], seeds=2, out_dir=tmp_path / "u", generator=generator,
                 policies=policies, classifier_steps=8, classifier_batch_size=8, quality=False,
                 echo=lines.append, warn=warnings.append)  # fmt: skip
    assert rep["arms"] == ["real", "soft", "fresh", "bsoftmax", "gate", "soft-control"]
    assert rep["controls"] == {"soft": "soft-control"}
    for seed in rep["seeds"]:
        ctl, soft = seed["arms"]["soft-control"], seed["arms"]["soft"]
        assert ctl["synthetic"]["n_synthetic"] == 0 and ctl["n_train"] == seed["n_real"] == 16
        assert soft["synthetic"]["n_synthetic"] == 16 and soft["n_train"] == 32
        assert seed["arms"]["fresh"]["synthetic"]["fresh_pools"] == 3  # steps 0, 3 and 6 of 8
        assert seed["arms"]["bsoftmax"]["n_train"] == 16
        gate = seed["arms"]["gate"]["synthetic"]  # fidelity 1.0: every imperfect class is withheld
        assert gate["withheld"] and set(gate["withheld"]) <= set(CLASSES)
        assert all(gate["counts"][c] == 0 for c in gate["withheld"])
        assert gate["n_synthetic"] == sum(gate["counts"].values()) < 16
        assert any(
            w.startswith(
                f"policy 'gate': no synthetic images for {next(iter(gate['withheld']))} (fidelity 0."
            )
            and w.endswith("below min_class_fidelity 1")
            for w in warnings
        )
    diff = rep["paired_control"]["soft"]["accuracy"]
    expected = np.subtract(rep["summary"]["soft"]["accuracy"]["values"],
                           rep["summary"]["soft-control"]["accuracy"]["values"])  # fmt: skip
    assert diff["values"] == pytest.approx(expected.tolist())
    md = (tmp_path / "u" / "report.md").read_text()
    assert "GAN's contribution over the distillation control" in md and "| soft | soft-control |" in md
    assert "balanced softmax loss" in md and "fresh synthetic pool" in md
    assert "classes with fidelity < 1.0 withheld" in md
    assert any("torch thread" in line for line in lines)
    assert rep["threads"] == torch.get_num_threads()


def test_an_arm_that_trains_exactly_as_an_earlier_one_is_not_trained_again(data, tmp_path):
    """The generator chose temperature 0.8: a policy at 0.8 draws the same images as one at the
    generator's own temperature, and a class-fidelity gate at 0 withholds nothing; both reuse the
    first arm's result, which is what training them on their own gives."""
    import torch

    from ganaug.checkpoint import save_generator
    from ganaug.models import build_generator

    torch.manual_seed(0)
    module = build_generator("mlp", num_classes=3, z_dim=8, image_size=16, channels=1, width=16)
    gen = tmp_path / "g.safetensors"
    save_generator(gen, module, classes=CLASSES, run_id="t08", step=0, temperature=0.8)
    train, test = data
    opts = dict(per_class_n=8, seeds=[0], generator=str(gen), classifier_steps=8,
                classifier_batch_size=8, quality=False)  # fmt: skip
    own = dict(name="own", strategy=2, synthetic_share=0.25, soft_labels=True)
    policies = [
        MixPolicy(**own),
        MixPolicy(**{**own, "name": "t08", "temperature": 0.8}),
        MixPolicy(**{**own, "name": "gate0", "min_class_fidelity": 0.0}),
        MixPolicy(**{**own, "name": "t05", "temperature": 0.5}),
        MixPolicy(**{**own, "name": "hard", "soft_labels": False}),
    ]
    lines: list[str] = []
    rep = uplift(train, test, out_dir=tmp_path / "u", policies=policies, echo=lines.append, **opts)
    arms = rep["seeds"][0]["arms"]
    assert arms["t08"]["same_as"] == "own" and arms["gate0"]["same_as"] == "own"
    assert arms["t08"]["train_seconds"] == 0.0
    assert all("same_as" not in arms[a] for a in ("own", "t05", "hard", "own-control"))
    assert sum("trains exactly as 'own'" in line for line in lines) == 2
    assert sum("synthetic images for 't08'" in line for line in lines) == 0  # one set for both
    md = (tmp_path / "u" / "report.md").read_text()
    assert "- `t08`:" in md and "Seed 0: trained exactly as `own`" in md
    alone = uplift(train, test, out_dir=tmp_path / "alone", policies=[policies[1], policies[2]], **opts)
    solo = alone["seeds"][0]["arms"]
    assert "same_as" not in solo["t08"] and solo["gate0"]["same_as"] == "t08"
    assert solo["t08"]["accuracy"] == arms["t08"]["accuracy"] == arms["own"]["accuracy"]
    assert solo["t08"]["per_class_accuracy"] == arms["own"]["per_class_accuracy"]


def test_a_gan_policy_whose_gate_withheld_every_class_trains_as_the_no_gan_arm(data, generator, tmp_path):
    """A class-fidelity gate of 1.0 withholds every class the random generator does not draw
    perfectly; a policy that asks only for such classes draws no GAN image, so it is the
    oversampling arm's training, and a withheld class it asked nothing for is not reported."""
    train, test = data
    opts = dict(imbalance=[8, 3, 5], seeds=[0], generator=generator, classifier_steps=8,
                classifier_batch_size=8, quality=False)  # fmt: skip
    probe = MixPolicy(name="probe", strategy=1.0, min_class_fidelity=1.0)
    seen = uplift(train, test, out_dir=tmp_path / "p", policies=[probe], **opts)
    withheld = sorted(seen["seeds"][0]["arms"]["probe"]["synthetic"]["withheld"])
    assert withheld  # the same seed, subset and classifier decide the same below
    counts = dict(zip(CLASSES, [8, 3, 5], strict=True))
    asked = {c: counts[c] + 2 for c in withheld[1:]} | {withheld[0]: counts[withheld[0]]}  # 0 for it
    policies = [
        MixPolicy(name="oversample", strategy=0, balance=True),
        MixPolicy(name="gated", strategy=asked, balance=True, min_class_fidelity=1.0),
    ]
    rep = uplift(train, test, out_dir=tmp_path / "u", policies=policies, **opts)
    gated = rep["seeds"][0]["arms"]["gated"]
    assert gated["synthetic"]["n_synthetic"] == 0 and gated["same_as"] == "oversample"
    assert sorted(gated["synthetic"]["withheld"]) == withheld[1:]
    assert gated["accuracy"] == rep["seeds"][0]["arms"]["oversample"]["accuracy"]


# -- soft labels in augment outputs and GanAugDataset ----------------------------------------------
def test_augment_soft_labels_in_manifest_and_npz(tmp_path, generator):
    x, y = pattern_images([6, 6, 6], size=16, seed=2)
    src = tmp_path / "train.npz"
    np.savez(src, images=x, labels=y, classes=np.array(CLASSES))
    out = tmp_path / "aug"
    proc = run_cli("augment", str(src), "-g", str(generator), "--out", str(out), "--strategy", "1",
                   "--format", "npz", "--soft-labels", "-O", "confidence_steps=10", "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    with np.load(out / "data.npz") as npz:
        soft = npz["soft_labels"]
        assert soft.shape == (36, 3) and soft.dtype == np.float32
        for i, rec in enumerate(records):
            if rec["source"] == "real":
                assert "soft_label" not in rec and soft[i].tolist() == np.eye(3)[rec["label_index"]].tolist()
            else:
                assert sum(rec["soft_label"]) == pytest.approx(1.0, abs=1e-4)
                assert soft[i] == pytest.approx(rec["soft_label"], abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["soft_labels"] is True and "trained on the real data" in summary["teacher"]["classifier"]


def test_augment_balanced_teacher_is_trained_with_class_balanced_batches(tmp_path, generator):
    """``--teacher balanced`` on imbalanced data: the soft labels are those of ganaug's classifier
    trained on DATA with class-balanced batches (same steps and seed), not of the plain one."""
    x, y = pattern_images([12, 3, 5], size=16, seed=2)
    src = tmp_path / "train.npz"
    np.savez(src, images=x, labels=y, classes=np.array(CLASSES))
    out = tmp_path / "aug"
    proc = run_cli("augment", str(src), "-g", str(generator), "--out", str(out), "--strategy", "1",
                   "--format", "npz", "--soft-labels", "--teacher", "balanced", "--seed", "3",
                   "-O", "confidence_steps=10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "training the soft-label teacher (class-balanced batches) (10 steps)" in proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    said = summary["teacher"]["classifier"]
    assert said == "trained on the real data with class-balanced batches (10 steps)"
    with np.load(out / "data.npz") as npz:
        synthetic = npz["labels"].shape[0] - 20
        images, soft = npz["images"][20:], npz["soft_labels"][20:]
    assert synthetic == 20
    weights = 1.0 / np.bincount(y)[y]
    balanced = train_classifier(x, y, 3, steps=10, seed=3, classes=CLASSES, draw_weight=weights)
    plain = train_classifier(x, y, 3, steps=10, seed=3, classes=CLASSES)
    np.testing.assert_allclose(soft, balanced.predict_proba(images), atol=1e-5)
    assert not np.allclose(soft, plain.predict_proba(images), atol=1e-3)


def test_gan_aug_dataset_returns_soft_labels(data, generator):
    from ganaug.torch_dataset import GanAugDataset

    train, _ = data
    teacher = train_classifier(train.images, train.labels, 3, steps=5, batch_size=8, seed=0, classes=CLASSES)
    ds = GanAugDataset(train, generator, ratio=0.5, seed=0, teacher=teacher, return_soft_labels=True)
    image, label, soft = ds[0]
    assert soft.tolist() == np.eye(3)[label].tolist()
    j = ds.n_real + 2
    image, label, soft = ds[j]
    assert soft == pytest.approx(teacher.predict_proba(image[None])[0], abs=1e-5)
    with pytest.raises(UsageError, match="teacher"):
        GanAugDataset(train, generator, ratio=0.5, return_soft_labels=True)
    # a policy's soft_weight: the same synthetic image, its target half intended class, half teacher
    policy = MixPolicy(strategy=0.5, soft_labels=True, soft_weight=0.5)
    mixed = GanAugDataset.from_policy(train, generator, policy, seed=0, teacher=teacher)
    image_m, label_m, soft_m = mixed[j]
    assert np.array_equal(image_m, image) and label_m == label
    assert soft_m == pytest.approx(0.5 * np.eye(3)[label] + 0.5 * soft, abs=1e-6)
    with pytest.raises(UsageError, match="soft_weight"):
        GanAugDataset(train, generator, teacher=teacher, return_soft_labels=True, soft_weight=0)


# -- #18: thread defaults and the FID/KID scale ----------------------------------------------------
def test_auto_threads():
    assert [auto_threads(c) for c in (1, 2, 3, 4, 16, 64)] == [1, 1, 1, 2, 8, 8]


def test_quality_report_has_a_real_vs_real_reference(data):
    train, test = data
    extractor = train_classifier(train.images, train.labels, 3, steps=20, batch_size=8, seed=0)
    noise = np.random.default_rng(0).integers(0, 255, test.images.shape, dtype=np.uint8)
    q = quality_report(test, (noise, test.labels), extractor, kid_subsets=5)
    ref = q["real_vs_real"]
    assert ref["n_per_half"] == 9 and ref["fid"] >= 0
    assert q["fid"] > 5 * ref["fid"]  # noise is far from the data; real halves are close


def test_soft_weight_mixes_the_intended_class_into_the_teacher_target(data):
    train, _ = data
    teacher = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], np.float32)
    syn = Synthetic(train.images[:2], np.array([0, 2]), teacher)
    half = mix_arrays(MixPolicy(strategy=2, soft_labels=True, soft_weight=0.5), train, syn, 3)
    expected = np.array([[0.6, 0.4, 0.0], [0.25, 0.125, 0.625]])
    assert half["soft_targets"][len(train) :] == pytest.approx(expected)
    alone = mix_arrays(MixPolicy(strategy=2, soft_labels=True), train, syn, 3)
    assert alone["soft_targets"][len(train) :] == pytest.approx(teacher)
    synthetic_only = MixPolicy(strategy=2, soft_labels=True, soft_weight=0.25, use_real=False)
    only_row = mix_arrays(synthetic_only, train, syn, 3)["soft_targets"][1]
    assert only_row == pytest.approx([0.125, 0.0625, 0.8125])
    keyed = MixPolicy(strategy=2, soft_labels=True, soft_weight=0.5)
    assert keyed.training_key() != MixPolicy(strategy=2, soft_labels=True).training_key()
    assert keyed.synthetic_key() == MixPolicy(strategy=2, soft_labels=True).synthetic_key()  # same images
    assert keyed.control() == MixPolicy(strategy=2, soft_labels=True).control()
    from dataclasses import asdict

    from ganaug.eval.tune import training_options
    from ganaug.report import describe_policy_fields

    assert "synthetic targets 0.5 teacher + 0.5 intended class" in describe_policy_fields(asdict(keyed))
    assert training_options(keyed)["soft_weight"] == 0.5  # how to train on augment output
    from ganaug.eval.spec import UpliftSpec

    flags = UpliftSpec(soft_labels=True, soft_weight=0.5)  # eval uplift --soft-labels --soft-weight 0.5
    assert flags.single_policy().training_key() == keyed.training_key()
    for bad in ("soft_labels=true,soft_weight=0", "soft_labels=true,soft_weight=1.5", "soft_weight=0.5"):
        with pytest.raises(UsageError, match="soft_weight"):
            MixPolicy.parse(bad)


def test_a_balanced_teacher_is_the_oversampling_classifier_and_labels_the_synthetic_images(
    data, generator, tmp_path
):
    """``teacher="balanced"``: the teacher is trained on the seed's real images with class-balanced
    batches -- the oversampling arm's training -- and the synthetic images' soft labels are its
    probabilities, not the real-only classifier's."""
    from ganaug.eval.classifier_model import Classifier
    from ganaug.eval.common import draw_subset
    from ganaug.eval.policy import class_balanced_weights

    train, test = data
    policies = [
        MixPolicy(name="oversample", strategy=0, balance=True),
        MixPolicy(name="soft", strategy="not majority", balance=True, soft_labels=True, soft_weight=0.5),
    ]
    opts = dict(imbalance=[8, 3, 5], seeds=[0], generator=generator, classifier_steps=8,
                classifier_batch_size=8, quality=False)  # fmt: skip
    rep = uplift(train, test, out_dir=tmp_path / "u", policies=policies, teacher="balanced", **opts)
    seed_dir = tmp_path / "u" / "seed_0"
    teacher = Classifier.load(seed_dir / "teacher_classifier.safetensors")
    real = Classifier.load(seed_dir / "real_classifier.safetensors")
    subset = draw_subset(train, [8, 3, 5], 0)
    balanced = train_classifier(subset.images, subset.labels, 3, steps=8, batch_size=8, seed=0,
                                draw_weight=class_balanced_weights(subset.labels, 3))  # fmt: skip
    expected = balanced.predict_proba(test.images)
    np.testing.assert_allclose(teacher.predict_proba(test.images), expected, atol=1e-6)
    with np.load(seed_dir / "synthetic_soft" / "data.npz") as npz:
        images, soft = npz["images"], npz["soft_labels"]
    assert len(images) == 8  # "not majority": c1 (3) and c2 (5) up to 8
    np.testing.assert_allclose(soft, teacher.predict_proba(images), atol=1e-5)
    assert not np.allclose(soft, real.predict_proba(images), atol=1e-3)
    md = (tmp_path / "u" / "report.md").read_text()
    assert "Teacher of the soft-label and distillation arms: a classifier trained on each seed's real " \
        "images with class-balanced batches." in md  # fmt: skip
    temperature = rep["seeds"][0]["gan"]["temperature"]
    assert isinstance(temperature, float) and f"sampled at temperature {temperature:g} (seed 0)" in md
    # no arm learns from a teacher: none is trained, and the report names none
    plain = uplift(train, test, out_dir=tmp_path / "p", policies=policies[:1], teacher="balanced", **opts)
    assert not (tmp_path / "p" / "seed_0" / "teacher_classifier.safetensors").exists()
    assert plain["arms"] == ["real", "oversample"]
    assert "Teacher of" not in (tmp_path / "p" / "report.md").read_text()


def test_balanced_filter_gates_and_filters_with_a_class_balanced_classifier(data, generator, tmp_path):
    """``balanced_filter``: the policy's confidence filter and class-fidelity gate use a classifier
    trained on the seed's real images with class-balanced batches (the balanced teacher when the run
    has one), not the real-only arm's, which has learned the imbalanced prior."""
    from ganaug.eval.classifier_model import Classifier
    from ganaug.eval.common import draw_subset
    from ganaug.eval.policy import class_balanced_weights

    train, test = data
    gate = dict(strategy="not majority", balance=True, filter=True, min_confidence=0.3,
                min_class_fidelity=0.0)  # fmt: skip
    policies = [MixPolicy(name="plain", **gate), MixPolicy(name="bal", balanced_filter=True, **gate)]
    opts = dict(imbalance=[8, 3, 5], seeds=[0], generator=generator, classifier_steps=8,
                classifier_batch_size=8, quality=False)  # fmt: skip
    uplift(train, test, out_dir=tmp_path / "u", policies=policies, **opts)
    seed_dir = tmp_path / "u" / "seed_0"
    path = seed_dir / "balanced_filter_classifier.safetensors"
    subset = draw_subset(train, [8, 3, 5], 0)
    balanced = train_classifier(subset.images, subset.labels, 3, steps=8, batch_size=8, seed=0,
                                draw_weight=class_balanced_weights(subset.labels, 3))  # fmt: skip
    np.testing.assert_allclose(
        Classifier.load(path).predict_proba(test.images), balanced.predict_proba(test.images), atol=1e-6
    )

    def filter_classifiers(arm: str) -> set[str]:
        settings = json.loads((seed_dir / f"synthetic_{arm}" / "summary.json").read_text())["filter_settings"]
        return {settings["confidence"]["classifier"], settings["class-fidelity"]["classifier"]}

    assert filter_classifiers("plain") == {str(seed_dir / "real_classifier.safetensors")}
    assert filter_classifiers("bal") == {str(path)}
    assert "filtered by a class-balanced classifier" in (tmp_path / "u" / "report.md").read_text()
    # with a balanced teacher the run trains that classifier once
    soft = MixPolicy(name="soft", strategy="not majority", balance=True, soft_labels=True)
    uplift(train, test, out_dir=tmp_path / "t", policies=[policies[1], soft], teacher="balanced", **opts)
    seed_dir = tmp_path / "t" / "seed_0"
    assert not (seed_dir / "balanced_filter_classifier.safetensors").exists()
    assert filter_classifiers("bal") == {str(seed_dir / "teacher_classifier.safetensors")}


def test_balanced_filter_is_a_filter_setting_of_the_policy():
    bal = MixPolicy.parse("name=b,strategy=1,min_class_fidelity=0.8,balanced_filter=true")
    assert bal.augment_filters() == (
        ["class-fidelity"],
        {"min_class_fidelity": 0.8, "filter_classifier": "balanced"},
    )
    assert bal.synthetic_key() != MixPolicy(name="b", strategy=1, min_class_fidelity=0.8).synthetic_key()
    assert bal.control().balanced_filter is False
    with pytest.raises(UsageError, match="balanced_filter needs filter=true or min_class_fidelity"):
        MixPolicy(name="x", strategy=1, balanced_filter=True)
    with pytest.raises(UsageError, match="balanced_filter must be true or false"):
        MixPolicy(name="x", strategy=1, filter=True, balanced_filter="yes")


def test_augment_filter_classifier_balanced_filters_labels_and_is_shared(tmp_path, generator):
    """``--filter-classifier balanced``: the filters' classifier is trained on DATA with
    class-balanced batches; the soft labels come from it, and ``--teacher balanced`` reuses it."""
    x, y = pattern_images([12, 3, 5], size=16, seed=2)
    src = tmp_path / "train.npz"
    np.savez(src, images=x, labels=y, classes=np.array(CLASSES))
    said = "trained on the real data with class-balanced batches (10 steps)"
    weights = 1.0 / np.bincount(y)[y]
    balanced = train_classifier(x, y, 3, steps=10, seed=3, classes=CLASSES, draw_weight=weights)
    for i, extra in enumerate(([], ["--teacher", "balanced"])):
        out = tmp_path / f"aug{i}"
        proc = run_cli("augment", str(src), "-g", str(generator), "--out", str(out), "--strategy", "1",
                       "--format", "npz", "--filter", "confidence", "--min-confidence", "0",
                       "--filter-classifier", "balanced", "--soft-labels", *extra, "--seed", "3",
                       "-O", "confidence_steps=10")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        printed = proc.stdout + proc.stderr
        assert printed.count("training the confidence filter's classifier (class-balanced batches)") == 1
        assert "soft-label teacher" not in printed  # shared, not trained again
        summary = json.loads((out / "summary.json").read_text())
        assert summary["teacher"]["classifier"] == said
        assert summary["filter_settings"]["confidence"]["classifier"] == said
        with np.load(out / "data.npz") as npz:
            images, soft = npz["images"][20:], npz["soft_labels"][20:]
        assert len(images) == 20
        np.testing.assert_allclose(soft, balanced.predict_proba(images), atol=1e-5)
