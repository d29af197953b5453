"""``ganaug eval merge``: seeds run apart give the same report as one run over all of them."""

from __future__ import annotations

import json

import pytest
from conftest import pattern_images, train_tiny_mlp_run, tree_digest
from conftest import run_cli_one_thread as run_cli

from ganaug.data import ImageDataset
from ganaug.errors import UsageError
from ganaug.eval.merge import merge_uplift_reports
from ganaug.evaluate import MixPolicy, uplift

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = ["c0", "c1", "c2"]
POLICIES = [
    MixPolicy(name="gan", strategy=1.0),
    MixPolicy(name="soft", strategy=1.0, soft_labels=True),  # brings a distillation control arm
    MixPolicy(name="soft-fresh", strategy=1.0, soft_labels=True, fresh=True),  # shares that control
]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """One uplift run over seeds 0 and 1, and the same experiment run as two one-seed parts."""
    root = tmp_path_factory.mktemp("merge")
    x, y = pattern_images([12, 12, 12], size=16, seed=0)
    xt, yt = pattern_images([10, 10, 10], size=16, seed=1)
    train_set, test_set = ImageDataset(x, y, CLASSES), ImageDataset(xt, yt, CLASSES)

    gen = train_tiny_mlp_run(train_set, root / "gan")

    def run(name: str, seeds: list[int], steps: int = 10) -> dict:
        return uplift(
            train_set, test_set, per_class_n=6, seeds=seeds, generator=str(gen), policies=POLICIES,
            classifier_steps=steps, quality=False, out_dir=root / name, plots=False,
        )  # fmt: skip

    return {
        "root": root,
        "whole": run("whole", [0, 1]),
        "s0": root / "s0",
        "s1": root / "s1",
        "reports": (run("s0", [0]), run("s1", [1]), run("s1-longer", [1], steps=12)),
    }


def test_merged_parts_equal_one_run_over_all_seeds(parts):
    merged = merge_uplift_reports([parts["s1"], parts["s0"]])  # order of the parts does not matter
    whole = parts["whole"]
    assert merged["settings"]["seeds"] == [0, 1] and [s["seed"] for s in merged["seeds"]] == [0, 1]
    assert merged["arms"] == whole["arms"] == ["real", "gan", "soft", "soft-fresh", "soft-control"]
    assert merged["summary"] == whole["summary"]
    assert merged["paired"] == whole["paired"]
    assert merged["controls"] == whole["controls"] == {"soft": "soft-control", "soft-fresh": "soft-control"}
    assert merged["paired_control"] == whole["paired_control"]
    assert merged["best_baseline"] == whole["best_baseline"]
    assert set(whole["best_baseline"]["paired"]) == {"gan", "soft", "soft-fresh"}
    assert merged["paired"]["gan"]["accuracy"]["ci95"] is not None  # two seeds: an interval again
    assert [p["seeds"] for p in merged["merged_from"]] == [[1], [0]]


def test_eval_merge_cli_writes_the_report(parts, tmp_path):
    out = tmp_path / "merged"
    r = run_cli("eval", "merge", str(parts["s0"]), str(parts["s1"] / "report.json"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "GAN contribution: soft - soft-control" in r.stdout
    assert "best GAN arm vs the strongest no-GAN arm: " in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == parts["whole"]["summary"]
    assert report["command"].startswith("ganaug eval merge")
    md = (out / "report.md").read_text()
    assert "Merged from:" in md and "seeds: 0, 1" in md and "the sum over the 2 merged parts" in md
    assert md.count("- `soft-control`: control of `soft` and `soft-fresh`") == 1  # a shared control, once
    assert f"## Against the strongest no-GAN arm (`{report['best_baseline']['arm']}`)" in md
    assert (out / "per_class_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_merge_refuses_other_experiments_repeated_seeds_and_unsafe_out(parts, tmp_path):
    with pytest.raises(UsageError, match=r"settings differ: classifier_steps"):
        merge_uplift_reports([parts["s0"], parts["root"] / "s1-longer"])
    with pytest.raises(UsageError, match=r"seed 0 is in both"):
        merge_uplift_reports([parts["s0"], parts["root"] / "whole"])
    with pytest.raises(UsageError, match=r"no uplift report here"):
        merge_uplift_reports([parts["s0"], tmp_path])
    before = tree_digest(parts["s0"])
    inside = run_cli("eval", "merge", str(parts["s0"]), str(parts["s1"]), "--out", str(parts["s0"] / "m"))
    assert inside.returncode == 2 and inside.stderr.count("error:") == 1 and "inside" in inside.stderr
    same = run_cli("eval", "merge", str(parts["s0"]), str(parts["s1"]), "--out", str(parts["s0"]))
    assert same.returncode == 2 and "choose another --out" in same.stderr
    assert tree_digest(parts["s0"]) == before


def _arm(values: list[float]) -> dict:
    entry = {"mean": sum(values) / len(values), "values": values}
    return {"accuracy": entry, "balanced_accuracy": dict(entry)}


def test_gan_arms_are_compared_with_the_strongest_no_gan_arm():
    from ganaug.eval.uplift import comparisons

    summary = {
        "real": _arm([80.0, 81.0, 82.0]),
        "over": _arm([85.0, 86.0, 84.0]),  # strategy 0: the strongest no-GAN arm
        "gan": _arm([86.0, 85.0, 87.0]),
        "soft": _arm([90.0, 90.0, 90.0]),
        "soft-control": _arm([84.0, 85.0, 86.0]),
        "tuned": _arm([99.0, 99.0, 99.0]),  # not a policy of the run: in neither group
    }
    report = {
        "arms": list(summary),
        "summary": summary,
        "controls": {"soft": "soft-control"},
        "settings": {
            "policies": [
                {"name": "over", "strategy": 0},
                {"name": "gan", "strategy": 1.0},
                {"name": "soft", "strategy": "not majority"},
            ]
        },
    }
    out = comparisons(report)
    assert out["best_baseline"]["arm"] == "over"
    paired = out["best_baseline"]["paired"]
    assert set(paired) == {"gan", "soft"}
    assert paired["gan"]["accuracy"]["values"] == pytest.approx([1.0, -1.0, 3.0])
    assert paired["gan"]["accuracy"]["mean"] == pytest.approx(1.0)
    assert out["paired_control"]["soft"]["accuracy"]["mean"] == pytest.approx(5.0)
    report["summary"]["soft-control"] = _arm([95.0, 95.0, 95.0])  # a control can be the strongest
    assert comparisons(report)["best_baseline"]["arm"] == "soft-control"
    no_gan = {**report, "arms": ["real", "over"], "controls": {}}
    assert "best_baseline" not in comparisons(no_gan)  # nothing to compare


def test_terminal_table_keeps_its_columns_for_long_policy_names():
    from ganaug.cli.eval_cmd import summary_lines

    name = "gan-rare-over-cf80-long"
    summary = {a: {k: {**v, "std": 0.5} for k, v in _arm(vals).items()}
               for a, vals in (("real", [80.0, 82.0]), (name, [85.0, 86.0]))}  # fmt: skip
    paired = {name: {"accuracy": {"mean": 4.5, "ci95": [1.0, 8.0]}}}
    rows = summary_lines({"arms": ["real", name], "summary": summary, "paired": paired}).splitlines()
    assert {row.index("±") for row in rows[1:3]} == {rows[1].index("±")}, rows  # columns line up
    assert rows[2].startswith(name + " ") and rows[2].rstrip().endswith("+4.50 [+1.00, +8.00]")
