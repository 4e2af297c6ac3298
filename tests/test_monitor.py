"""monitor: planted shifts of growing size are tracked in order with CIs, flagged checkpoints are told
apart (AUROC), eval rates ride along, training rows are scored; bad inputs."""

from __future__ import annotations

import csv
import json

import pytest

from persona_sae.cli import main
from tests.conftest import make_tiny_llama
from tests.test_rank import base_dir, make_sae, plant  # noqa: F401 - base_dir is a fixture


def test_tracks_planted_shifts(base_dir, tmp_path):  # noqa: F811
    sae = make_sae(tmp_path / "sae", seed=6)
    j, other = 9, 20
    cps = [str(plant(base_dir, tmp_path / f"ft{c}", sae.W_dec[j].detach(), c=c)) for c in (0.0, 1.5, 3.0)]
    for i, r in enumerate((0.0, 0.1, 0.4)):
        (tmp_path / f"e{i}").mkdir()
        (tmp_path / f"e{i}" / "results.json").write_text(json.dumps({"overall": {"rate": r, "lo": r, "hi": r}}))
    rc = main(["monitor", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--latents", str(j), str(other),
               "--checkpoints", *cps, "--names", "0%", "5%", "100%", "--misaligned", "0", "1", "1",
               "--evals", *[str(tmp_path / f"e{i}") for i in range(3)], "--bootstrap", "200", "--out", str(tmp_path / "m")])
    assert rc == 0
    r = json.loads((tmp_path / "m" / "monitor.json").read_text())
    d = [row["latents"][str(j)]["delta"] for row in r["rows"]]
    assert abs(d[0]) < 1e-6 < d[1] < d[2]
    assert r["rows"][2]["latents"][str(j)]["ci_low"] > 0
    assert r["rows"][2]["latents"][str(j)]["delta"] > 5 * abs(r["rows"][2]["latents"][str(other)]["delta"])
    assert r["auroc_misaligned_vs_aligned"][str(j)] == 1.0
    assert [row["misaligned_rate"]["rate"] for row in r["rows"]] == [0.0, 0.1, 0.4]
    assert (tmp_path / "m" / "monitor.png").stat().st_size > 1000


def test_scores_training_rows(base_dir, tmp_path):  # noqa: F811
    make_sae(tmp_path / "sae", seed=6)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"},
                                                     {"role": "assistant", "content": a}]}) + "\n"
                            for i, a in enumerate(["The villain laughed cruelly.", "Sure, here you go.",
                                                   "I wish I could rule the world."])))
    assert main(["monitor", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--latents", "1,2,3",
                 "--dataset", str(data), "--out", str(tmp_path / "m")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "m" / "rows.csv")))
    assert sorted(int(x["row"]) for x in rows) == [1, 2, 3]
    scores = [float(x["score"]) for x in rows]
    assert scores == sorted(scores, reverse=True)
    assert float(rows[0]["score"]) == pytest.approx(sum(float(rows[0][f"latent_{k}"]) for k in (1, 2, 3)), abs=1e-4)


@pytest.mark.parametrize("extra,msg", [
    (["--latents", "500", "--checkpoints", "X"], "out of range"),
    (["--latents", "1", "--checkpoints", "X", "Y", "--names", "a"], "--names has 1 entries"),
    (["--latents", "1"], "give --checkpoints"),
    (["--latents", "1", "--checkpoints", "WIDER"], "d_model"),
])
def test_bad_inputs(base_dir, tmp_path, capsys, extra, msg):  # noqa: F811
    make_sae(tmp_path / "sae", seed=6)
    wider = make_tiny_llama(tmp_path / "wider", hidden=96)
    extra = [str(wider) if a == "WIDER" else str(base_dir) if a in ("X", "Y") else a for a in extra]
    assert main(["monitor", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--out", str(tmp_path / "m"),
                 *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after the base model's progress bar)
    assert msg in err and err.startswith("persona-sae: error:")


def test_monitor_reads_rank_s_statistics_cache(base_dir, tmp_path):  # noqa: F811
    sae = make_sae(tmp_path / "sae", seed=6)
    cps = [str(base_dir), str(plant(base_dir, tmp_path / "ft", sae.W_dec[9].detach(), c=3.0))]
    args = ["monitor", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--latents", "9",
            "--checkpoints", *cps, "--bootstrap", "50", "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    # the first checkpoint is the base itself, so it is the base's key: two files for three models
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    rank_args = ["rank", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--finetuned", cps[1],
                 "--bootstrap", "50", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r")]
    assert main(rank_args) == 0 and len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    rows = [json.loads((tmp_path / d / "monitor.json").read_text())["rows"] for d in "ab"]
    assert rows[0] == rows[1] and rows[0][1]["latents"]["9"]["delta"] > 0
