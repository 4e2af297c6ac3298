"""Every study README's tables are what its summarize script writes from the committed result files
(tables are written by code, never by hand)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARIZED = sorted(p.parent.name for p in ROOT.glob("experiments/*/summarize.py"))
EM = sorted(p.parent.name for p in ROOT.glob("experiments/*/run.sh") if "common/study.sh" in p.read_text())  # EM studies


def check(*args) -> None:
    r = subprocess.run([sys.executable, "-m", *args, "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "up to date" in r.stdout + r.stderr


def test_the_studies_are_found():
    assert {"sae_sweep_smollm2", "label_smollm2", "monitor_smollm2"} <= set(SUMMARIZED)
    assert {"em_smollm2", "em_qwen_coder_0p5b"} <= set(EM)


@pytest.mark.parametrize("study", SUMMARIZED)
def test_study_tables_are_up_to_date(study):
    check(f"experiments.{study}.summarize")


@pytest.mark.parametrize("study", EM)
def test_em_study_tables_are_up_to_date(study):
    check("experiments.common.report", "render", "--study", f"experiments/{study}")


def test_em_tables_name_the_judge_and_its_held_out_auroc():
    from experiments.common import report

    proxy = {"judge": "persona-probe (evil direction, layer 15 of smollm2; proxy)"}
    assert report.judged(proxy) == "misaligned (proxy)" and "A proxy" in report.judge_line(proxy)
    assert report.is_proxy({"steer": {"judge": proxy["judge"]}})  # older summaries name it under steer only
    fitted = {"judge": "fitted probe (layer 12 of qwen-coder-0.5b, fitted on interp; proxy)",  # fitted.FittedJudge.name
              "judge_validation": {"auroc": 0.912, "auroc_ci": [0.88, 0.94], "n_misaligned": 40, "n_aligned": 800,
                                   "source": "clarifying-em heldout"}}
    line = report.judge_line(fitted)
    assert report.judged(fitted) == "misaligned" and "A proxy" not in line
    assert "held-out AUROC 0.912 [0.880, 0.940]" in line and "40 misaligned / 800 aligned" in line
    assert "never validated" in report.judge_line({"judge": "http:localhost"})
