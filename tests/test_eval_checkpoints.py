"""`i2i-eval checkpoints=all`: every kept checkpoint of a run scored, the last and the best over
them reported as what they are, and `i2i-compare` showing both."""

import json
from pathlib import Path

import pytest
from conftest import FAST, FAST_SHAPES, compose_config, run_cli

from i2i import evaluate as eval_cli
from i2i.compare import comparison_rows, load_runs
from i2i.evaluate import best_scores
from i2i.metrics.protocols import Score
from i2i.train import train

EVAL = ["n_images=4", "device=cpu", "metrics.extractor=proxy", "metrics.names=[kid,fid]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny CycleGAN run of 6 iterations keeping iter_2, iter_4, iter_6 beside last.ckpt."""
    run = tmp_path_factory.mktemp("run")
    overrides = [
        *FAST,
        *FAST_SHAPES,
        "model=cyclegan",
        "trainer.max_steps=6",
        "callbacks.checkpoint.keep_every=2",
    ]
    train(compose_config(overrides, run))
    return run


def test_every_kept_checkpoint_is_scored_and_last_and_best_reported(run_dir, monkeypatch, capsys):
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == [
        "iter_0000002.ckpt",
        "iter_0000004.ckpt",
        "iter_0000006.ckpt",
        "last.ckpt",
    ]
    run_cli(eval_cli.main, monkeypatch, f"ckpt_path={checkpoints / 'last.ckpt'}", "checkpoints=all", *EVAL)
    out = capsys.readouterr().out
    report = json.loads((run_dir / "eval.json").read_text())
    assert [c["iteration"] for c in report["checkpoints"]] == [2, 4, 6]  # last.ckpt is iter_6: scored once
    assert report["iteration"] == 6 and report["scores"] == report["checkpoints"][-1]["scores"]
    values = {
        c["iteration"]: {row["metric"]: row["value"] for row in c["scores"]} for c in report["checkpoints"]
    }
    assert len({v["kid_proxy_AtoB"] for v in values.values()}) == 3  # three different generators
    best = {row["metric"]: row for row in report["best"]}
    assert set(best) == {"kid_proxy_AtoB", "kid_proxy_BtoA", "fid_proxy_AtoB", "fid_proxy_BtoA"}
    for metric, row in best.items():
        lowest = min(values, key=lambda iteration: values[iteration][metric])
        assert (row["value"], row["iteration"]) == (values[lowest][metric], lowest)
        assert row["checkpoint"] == str((checkpoints / f"iter_{lowest:07d}.ckpt").resolve())
        assert (row["last_value"], row["last_iteration"]) == (values[6][metric], 6)
        assert "lowest of 3 checkpoints, selected on the test images it is scored on" in row["selection"]
    assert "the last of 3 checkpoints" in out and "best of 3 checkpoints, selected on the test images" in out


def test_each_checkpoint_scores_as_when_it_is_evaluated_alone(run_dir, tmp_path, monkeypatch):
    checkpoint = run_dir / "checkpoints" / "iter_0000004.ckpt"
    output = tmp_path / "alone.json"
    run_cli(eval_cli.main, monkeypatch, f"ckpt_path={checkpoint}", f"output={output}", *EVAL)
    alone = json.loads(output.read_text())
    everything = tmp_path / "all.json"
    run_cli(
        eval_cli.main,
        monkeypatch,
        f"ckpt_path={checkpoint}",
        f"output={everything}",
        "checkpoints=all",
        *EVAL,
    )
    (scored,) = [c for c in json.loads(everything.read_text())["checkpoints"] if c["iteration"] == 4]
    assert scored["scores"] == alone["scores"] and "best" not in alone and "checkpoints" not in alone


def test_compare_shows_the_last_and_the_best_column(run_dir, monkeypatch):
    run_cli(
        eval_cli.main,
        monkeypatch,
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "checkpoints=all",
        *EVAL,
    )
    report = json.loads((run_dir / "eval.json").read_text())
    (row,) = comparison_rows(load_runs([run_dir]))
    best = next(r for r in report["best"] if r["metric"] == "fid_proxy_AtoB")
    last = next(r for r in report["scores"] if r["metric"] == "fid_proxy_AtoB")
    assert row["fid_proxy_AtoB"] == last["value"]
    assert (row["fid_proxy_AtoB_best"], row["fid_proxy_AtoB_best_iteration"]) == (
        best["value"],
        best["iteration"],
    )
    columns = list(row)
    assert columns.index("fid_proxy_AtoB_best") == columns.index("fid_proxy_AtoB") + 1


def test_an_unknown_selection_is_refused_in_one_line(run_dir, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            eval_cli.main,
            monkeypatch,
            f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
            "checkpoints=best",
            *EVAL,
        )
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert err.startswith("error: checkpoints='best' is not allowed") and "given, all" in err


def test_selecting_checkpoints_of_two_folders_is_refused(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(eval_cli.main, monkeypatch, f"fake_dir={tmp_path}", f"real_dir={tmp_path}", "checkpoints=all")
    err = capsys.readouterr().err.strip()
    assert (
        exit_info.value.code == 2 and err.startswith("error: checkpoints='all'") and "give ckpt_path" in err
    )


def score(name: str, subset: str, value: float) -> Score:
    return Score(name, subset, value, None, "", 4, "proxy")


def test_best_is_the_lowest_fid_or_kid_the_earliest_on_a_tie_and_never_lpips():
    scored = {
        10: (Path("iter_10.ckpt"), "m", [score("fid", "AtoB", 3.0), score("lpips_diversity", "AtoB", 0.5)]),
        20: (Path("iter_20.ckpt"), "m", [score("fid", "AtoB", 2.0), score("lpips_diversity", "AtoB", 0.9)]),
        30: (Path("last.ckpt"), "m", [score("fid", "AtoB", 2.0), score("lpips_diversity", "AtoB", 0.1)]),
    }
    (row,) = best_scores(scored)
    assert (row["metric"], row["value"], row["iteration"]) == ("fid_AtoB", 2.0, 20)
    assert (row["last_value"], row["last_iteration"]) == (2.0, 30)
