"""report: the terminal printers' shared Console."""

from rich.table import Table

from persona_sae import report


def test_a_piped_table_keeps_one_row_a_line(capsys, monkeypatch):
    """stdout not a terminal (pytest captures it) and no COLUMNS: no wrapping at 80 columns."""
    monkeypatch.delenv("COLUMNS", raising=False)
    t = Table("latent", "top example")
    t.add_row("551", "the quick brown fox " * 20 + "ends here")
    t.add_row("552", "short")
    report.out.print(t)
    report.out.print("a long line of words " * 10 + "ends here too")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7, lines  # top rule, header, rule, two rows, bottom rule; then the line
    assert lines[3].startswith("│ 551") and lines[3].rstrip().endswith("ends here │")
    assert lines[6].endswith("ends here too")


def test_columns_still_sets_the_width(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    report.out.print("word " * 20)
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 40


def test_the_judges_held_out_numbers_print_as_the_study_tables_write_them(capsys, monkeypatch):
    from experiments.common.report import judge_line

    monkeypatch.delenv("COLUMNS", raising=False)
    v = {"auroc": 0.9123, "auroc_ci": [0.88, 0.94], "n_misaligned": 40, "n_aligned": 800, "source": "interp"}
    report._held_out(v)
    report._held_out(None)  # a judge never validated prints nothing
    printed = capsys.readouterr().out.strip()
    assert printed == "judge's held-out AUROC 0.912 [0.880, 0.940] on 40 misaligned / 800 aligned labelled answers it " \
                      "was not fitted on (interp)"
    assert printed.removeprefix("judge's ") in judge_line({"judge": "fitted probe", "judge_validation": v})
