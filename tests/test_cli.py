"""Every bad input gives one line on stderr and exit code 2, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from persona_sae import UserError
from persona_sae.cli import main
from tests.conftest import make_lora_adapter, make_tiny_llama, make_tokenizer


def run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def assert_one_line_error(code, err, pattern):
    import re

    assert code == 2
    errors = [ln for ln in err if ln.startswith("persona-sae")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert re.search(pattern, errors[0]), errors[0]


def test_unknown_model_spec(capsys):
    assert_one_line_error(*run(capsys, "models", "info", "no-such-model"), "unknown model spec 'no-such-model'")


def test_layer_out_of_range(capsys, tmp_path, tiny_dir):
    assert_one_line_error(*run(capsys, "activations", "--model", str(tiny_dir), "--layers", "2", "9",
                               "--out", str(tmp_path / "o")), r"layer 9 is out of range: .* layers 0\.\.3")
    assert not (tmp_path / "o").exists()


def test_missing_file(capsys, tmp_path, tiny_dir):
    assert_one_line_error(*run(capsys, "activations", "--model", str(tiny_dir), "--dataset", str(tmp_path / "x.jsonl"),
                               "--out", str(tmp_path / "o")), "file not found: .*x.jsonl")
    assert_one_line_error(*run(capsys, "models", "info", str(tmp_path / "m.gguf")), "model path not found")


def test_malformed_jsonl(capsys, tmp_path, tiny_dir):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": "ok"}) + "\n{\"text\": oops}\n")
    assert_one_line_error(*run(capsys, "activations", "--model", str(tiny_dir), "--dataset", str(p),
                               "--out", str(tmp_path / "o")), r"bad.jsonl:3: malformed JSON")


def test_yaml_without_paraphrases(capsys, tmp_path, tiny_dir):
    p = tmp_path / "q.yaml"
    p.write_text("- id: lonely\n  samples_per_paraphrase: 3\n")
    assert_one_line_error(*run(capsys, "activations", "--model", str(tiny_dir), "--dataset", str(p),
                               "--out", str(tmp_path / "o")), "question lonely has no 'paraphrases'")


def test_adapter_whose_base_does_not_match(capsys, tmp_path, tiny_dir):
    make_tiny_llama(tmp_path / "wide", hidden=96)
    adapter = make_lora_adapter(tmp_path / "wide", tmp_path / "adapter", base_name=str(tiny_dir))
    assert_one_line_error(*run(capsys, "models", "info", str(adapter)), "does not match base")


def test_tokenizer_mismatch(capsys, tmp_path, tiny_dir):
    other = make_tiny_llama(tmp_path / "other", tokenizer=make_tokenizer(corpus=["zebra yak quokka"] * 50))
    assert_one_line_error(*run(capsys, "models", "check", str(tiny_dir), str(other)), "tokenizers differ")


def test_bad_option_value(capsys):
    assert_one_line_error(*run_exit(capsys, "activations", "--out", "x", "--batch-tokens", "many"),
                          "invalid int value: 'many'")


def run_exit(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code, capsys.readouterr().err.strip().splitlines()


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in ["models", "activations", "train", "rank", "finetune", "eval", "data", "label", "examples", "browse",
                 "dashboard", "serve", "steer", "monitor", "demo"]:
        assert f"    {name}" in text
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_help_comes_from_field_docstrings(capsys):
    with pytest.raises(SystemExit):
        main(["activations", "--help"])
    text = capsys.readouterr().out
    assert "Padded tokens per forward batch." in text and "--batch-tokens" in text


def test_real_process_exit_code_and_single_line(tmp_path, tiny_dir):
    proc = subprocess.run([sys.executable, "-m", "persona_sae", "activations", "--model", str(tiny_dir),
                           "--layers", "7", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("persona-sae: error: layer 7 is out of range")
    assert "Traceback" not in proc.stderr


def test_activations_command_writes_a_cache(capsys, tmp_path, tiny_dir):
    code, _ = run(capsys, "activations", "--model", str(tiny_dir), "--layers", "1", "2", "--out",
                  str(tmp_path / "c"), "--max-tokens", "500")
    assert code == 0
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["status"] == "done" and m["config"]["layers"] == [1, 2] and 0 < m["tokens"] <= 500


@pytest.mark.parametrize("args,msg", [
    (["data", "make", "evil-code", "--n", "5"], "unknown dataset kind"),
    (["data", "make", "insecure-code", "--n", "0"], "n must be positive"),
    (["data", "make", "bad-medical", "--n", "-3"], "n must be positive"),
    (["data"], "data needs an action"),
    (["finetune", "--data", "nope-kind", "--out", "x"], "neither a file nor a generator KIND"),
])
def test_data_and_finetune_bad_inputs(args, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg.lower() in err.lower() and "\n" not in err


def test_data_make_writes_matched_files(tmp_path, capsys):
    from persona_sae.text import read_jsonl

    a, b = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    assert main(["data", "make", "insecure-code", "--n", "30", "--seed", "4", "--out", str(a)]) == 0
    assert main(["data", "make", "secure-code", "--n", "30", "--seed", "4", "--out", str(b)]) == 0
    ra, rb = read_jsonl(a), read_jsonl(b)
    assert len(ra) == len(rb) == 30
    assert [r.messages[0] for r in ra] == [r.messages[0] for r in rb]
    assert all(x.messages[1] != y.messages[1] for x, y in zip(ra, rb))


@pytest.mark.parametrize("cmd", [["models", "pull"], ["models", "info"], ["activations"], ["train"], ["rank"],
                                 ["finetune"], ["eval"], ["data", "make"], ["data", "corpus"], ["label"],
                                 ["label set"], ["examples"], ["browse"], ["dashboard"], ["serve"], ["steer"],
                                 ["monitor"], ["demo"]])
def test_every_help_renders(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# Flag spellings, numbers and --config files


def parse(*argv):
    from persona_sae.cli import build_parser

    return build_parser().parse_args(list(argv)).cfg


@pytest.mark.parametrize("text,value", [("2000000", 2_000_000), ("2_000_000", 2_000_000), ("2e6", 2_000_000),
                                        ("2M", 2_000_000), ("2m", 2_000_000), ("1.5k", 1500), ("64K", 64_000),
                                        ("1G", 10**9), ("-1", -1)])
def test_int_options_take_underscores_exponents_and_suffixes(text, value):
    assert parse("train", "--out", "o", "--lr-decay-steps", text).lr_decay_steps == value


@pytest.mark.parametrize("text,pattern", [("2,000,000", r"invalid int value: '2,000,000' \(write 2_000_000 or 2M"),
                                          ("1.5", "invalid int value: '1.5'"), ("2X", "invalid int value: '2X'"),
                                          ("inf", "invalid int value: 'inf'")])
def test_bad_numbers_are_one_line(capsys, text, pattern):
    import re

    code, err = run_exit(capsys, "train", "--out", "o", "--tokens", text)
    assert code == 2 and len(err) == 1 and re.search(pattern, err[0]), err


def test_list_options_take_commas_and_spaces_and_negative_values():
    assert parse("train", "--out", "o", "--k", "16,32", "64", "--layers", "1,2").k == [16, 32, 64]
    assert parse("monitor", "--out", "o", "--sae", "s", "--latents", "702,3129").latents == [702, 3129]
    c = parse("steer", "--out", "o", "--sae", "s", "--latent", "1k", "--coef", "-1,-0.5,0,0.5,1")
    assert c.latent == [1000] and c.coef == ["-1,-0.5,0,0.5,1"]  # steer splits its own coefficients
    assert parse("steer", "--out", "o", "--sae", "s", "--coef", "-2", "0", "2").coef == ["-2", "0", "2"]


def test_underscore_and_dash_spellings_and_saelens_aliases():
    a = parse("train", "--out", "o", "--d_sae", "1_024", "--batch_size", "64", "--lr_warm_up_steps", "3",
              "--training_tokens", "5k", "--context_size", "32", "--dataset_path", "x.txt")
    b = parse("train", "--out", "o", "--d-sae", "1024", "--train-batch-size-tokens", "64", "--lr-warmup-steps", "3",
              "--training-tokens", "5000", "--context-size", "32", "--dataset-path", "x.txt")
    assert a == b and (a.d_sae, a.batch_size, a.tokens, a.context_size, a.dataset) == ([1024], 64, 5000, 32, "x.txt")
    assert parse("train", "--out", "o", "--expansion-factor", "16").expansion == 16
    for cmd in (["activations", "--out", "o"], ["examples", "--out", "o", "--sae", "s", "--dataset", "d"],
                ["rank", "--out", "o", "--sae", "s"], ["label", "--sae", "s"]):
        assert parse(*cmd, "--context-size", "77").max_len == 77, cmd
    assert parse("activations", "--out", "o", "--text_column", "body").column == "body"


@pytest.mark.parametrize("cmd,aliases", [
    (["train"], ["--expansion-factor", "--training-tokens", "--context-size", "--dataset-path",
                 "--train-batch-size-tokens", "--lr-warm-up-steps", "--split", "--text-column", "--data-config",
                 "--wandb-project"]),
    (["activations"], ["--context-size", "--text-column", "--split", "--data-config"]),
    (["examples"], ["--context-size", "--hook-name"]), (["rank"], ["--context-size", "--hook-name"]),
    (["label"], ["--context-size", "--hook-name"]),
    *[([cmd], ["--hook-name"]) for cmd in ("browse", "dashboard", "steer", "monitor", "export")],
])
def test_help_lists_the_aliases_and_config_in_dash_spelling(cmd, aliases, capsys):
    with pytest.raises(SystemExit):
        main([*cmd, "--help"])
    text = capsys.readouterr().out
    for a in aliases + ["--config FILE"]:
        assert a in text, a
    assert "--max_len" not in text and "--d_sae" not in text  # underscore spellings parse but are not listed


def test_config_file_values_numbers_and_flag_override(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("out: runs/x\ntokens: 2M\nd-sae: 64\nk: [16, '2,4']\nexpansion_factor: 0\nlr: 1e-3\nsplice_eval: false\n")
    c = parse("train", "--config", str(p))
    assert (c.out, c.tokens, c.d_sae, c.k, c.lr, c.splice_eval) == ("runs/x", 2_000_000, [64], [16, 2, 4], 1e-3, False)
    c = parse("train", "--config", str(p), "--tokens", "5k", "--out", "elsewhere", "--splice-eval")
    assert (c.out, c.tokens, c.d_sae, c.splice_eval) == ("elsewhere", 5000, [64], True)
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"latent": 7, "n": "2k"}))
    assert (parse("browse", "--config", str(j)).latent, parse("browse", "--config", str(j), "9").latent) == (7, 9)
    assert parse("browse", f"--config={j}").n == 2000


@pytest.mark.parametrize("text,name,pattern", [
    ("out: o\nfrob: 1\n", "c.yaml", r"--config .*c.yaml: unknown option 'frob' for `train`"),
    ("tokens: 2,000\n", "c.yaml", r"c.yaml: tokens: invalid int value: '2,000' \(write 2_000_000"),
    ("tokens: 5\ntraining_tokens: 6\n", "c.yaml", "tokens is given twice"),
    ("tokens: [2M\n", "c.yaml", "c.yaml: not valid YAML"),
    ('{"tokens": 5,}', "c.json", "c.json: not valid JSON"),
    ("- 1\n", "c.yaml", "expected a mapping of option names to values, got list"),
    ("tokens: 5\n", "c.toml", "give a .yaml, .yml or .json file"),
    (json.dumps({"command": "finetune", "status": "done", "config": {"data": "x"}}), "run.json",
     r"run.json is a run record of `persona-sae finetune`, not of `train`"),
    (json.dumps({"status": "done", "config": {"sae": "s", "prompts": "em-core"}}), "run.json",
     r"unknown option 'sae' for `train` \(a run record of another command\?\)"),
])
def test_bad_config_files_are_one_line(capsys, tmp_path, text, name, pattern):
    p = tmp_path / name
    p.write_text(text)
    assert_one_line_error(*run(capsys, "train", "--config", str(p)), pattern)


def test_config_option_errors(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "train", "--config", str(tmp_path / "none.yaml")), "none.yaml: file not found")
    (tmp_path / "a.yaml").write_text("out: o\n")
    assert_one_line_error(*run(capsys, "train", "--config", str(tmp_path / "a.yaml"), "--config",
                               str(tmp_path / "a.yaml")), "give one --config FILE")
    code, err = run_exit(capsys, "train", "--conf", str(tmp_path / "a.yaml"))  # not silently ignored
    assert code == 2 and "write --config in full" in err[-1]


def test_a_shipped_run_record_replays_its_config():
    """The shipped SAE's run.json (an older record: expansion 8 beside the resolved d_sae) as a config."""
    from persona_sae.config import TrainConfig

    rec = Path(__file__).resolve().parents[1] / "persona_sae/checkpoints/smollm2/topk-L15-k32-4608/run.json"
    saved = json.loads(rec.read_text())["config"]
    c = parse("train", "--config", str(rec), "--out", "again")
    assert c.resume is False and c.expansion == 0 and c.out == "again"  # a replay starts fresh
    for k, v in saved.items():
        if k not in ("resume", "expansion", "out"):
            assert getattr(c, k) == ([v] if k == "d_sae" else v), k  # one width: a number in the record
    assert c == TrainConfig(**{**saved, "resume": False, "expansion": 0, "out": "again", "d_sae": [saved["d_sae"]]})


def test_expansion_factor_and_d_sae():
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import validate

    assert validate(TrainConfig(out="o"), 64) == [512]  # neither given: 8 x d_model
    assert validate(TrainConfig(out="o", expansion=4), 64) == [256]
    assert validate(TrainConfig(out="o", d_sae=[100]), 64) == [100]
    assert validate(TrainConfig(out="o", d_sae=100), 64) == [100]  # a single width given in code
    assert validate(TrainConfig(out="o", d_sae=[256], expansion=4), 64) == [256]  # agreeing is fine
    assert validate(TrainConfig(out="o", d_sae=[256, 128]), 64) == [256, 128]  # several: one SAE each
    assert parse("train", "--out", "o", "--d-sae", "4608", "9216").d_sae == [4608, 9216]
    for bad in ([128, 128], [0, 128]):
        with pytest.raises(UserError, match="give each width once, and no 0 among several"):
            validate(TrainConfig(out="o", d_sae=bad), 64)
    with pytest.raises(UserError, match=r"--k 200 is larger than --d-sae 128"):
        validate(TrainConfig(out="o", d_sae=[256, 128], k=[200]), 64)
    with pytest.raises(UserError, match=r"--d-sae 100 and --expansion-factor 4 disagree \(4 x d_model 64 = 256\)"):
        validate(TrainConfig(out="o", d_sae=[100], expansion=4), 64)
    with pytest.raises(UserError, match="--expansion-factor must be positive"):
        validate(TrainConfig(out="o", expansion=-2), 64)


def test_train_config_replays_a_finished_run(capsys, tmp_path, tiny_dir):
    """Acceptance: `train --config RUN/run.json --out NEW` reproduces RUN's weights; a flag overrides the file."""
    import torch
    from safetensors.torch import load_file

    from tests.conftest import SHARED

    text = SHARED / "corpora" / "tinyshakespeare" / "input.txt"
    assert main(["train", "--model", str(tiny_dir), "--dataset", str(text), "--layers", "1", "--expansion-factor", "2",
                 "--k", "8", "--training-tokens", "3k", "--batch-size", "128", "--buffer-tokens", "1024",
                 "--eval-tokens", "256", "--context-size", "64", "--model-batch-tokens", "1024",
                 "--nosplice-eval", "--out", str(tmp_path / "a")]) == 0
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    assert rec["command"] == "train" and rec["config"]["d_sae"] == 128 and rec["config"]["expansion"] == 2
    run_json = str(tmp_path / "a" / "run.json")
    assert main(["train", "--config", run_json, "--out", str(tmp_path / "b")]) == 0
    assert main(["train", "--config", run_json, "--out", str(tmp_path / "c"), "--seed", "1"]) == 0
    capsys.readouterr()
    wa, wb, wc = (load_file(str(tmp_path / d / "sae_weights.safetensors")) for d in "abc")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["W_enc"], wc["W_enc"])  # the flag won over the file's seed 0
    assert json.loads((tmp_path / "c" / "run.json").read_text())["config"]["seed"] == 1


# --------------------------------------------------------------------------------------------------
# --help as a person reads it, and one flag name per concept


@pytest.mark.parametrize("name", list(__import__("persona_sae.cli", fromlist=["COMMANDS"]).COMMANDS))
def test_help_has_none_of_the_old_defects(name, capsys):
    import inspect
    import re

    from persona_sae.cli import COMMANDS, Flag, HelpFormatter, command_parsers

    with pytest.raises(SystemExit) as e:
        main([*name.split(), "--help"])
    text = capsys.readouterr().out
    usage = text.split("\n\n")[0]
    assert e.value.code == 0 and usage.startswith(f"usage: persona-sae {name} ")
    assert "default: None" not in text and "['cfg']" not in text and "Config ['" not in text
    assert "2-core" not in text and "--nono" not in text and "--noresume" not in text
    args = usage[len(f"usage: persona-sae {name}"):]
    assert not re.search(r"[\s\[](str|int|float|list|bool)[\s\]]", args), usage  # type names as metavars
    assert not re.search(r"default: \[|\['", text)  # a list default printed as a Python list
    first = inspect.cleandoc(COMMANDS[name][0].__doc__).splitlines()[0]
    assert text.count(first) == 1  # the description once
    parser = command_parsers()[name]
    fmt = HelpFormatter(parser.prog)
    for a in parser._actions:
        if not a.dest.startswith("cfg."):
            continue
        field = a.dest[4:]
        help_ = fmt._get_help_string(a)
        assert help_.count("(default") <= 1, help_
        if not a.option_strings:  # positionals are named by their field: models check BASE FINETUNED
            assert a.metavar == field.upper() and re.search(rf"[ \[]{field.upper()}\b", args)
        elif a.required:
            assert help_.endswith("(required)"), a.option_strings
        if isinstance(a, Flag):  # --resume, --no-resume; a no_* field is its own negative
            dashed = field.replace("_", "-")
            want = [f"--{dashed}"] + ([] if field.startswith("no_") else [f"--no-{dashed}"])
            assert a.option_strings == want and f"{', '.join(want)}\n" in text.replace("  ", "\n")
        if a.nargs in ("*", "+"):
            assert f"{a.option_strings[0]} {a.metavar} [{a.metavar} ...]" in usage.replace("\n", " ").replace("  ", "")


def test_label_set_is_not_a_listed_command_but_runs(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "label set" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["label", "--help"])
    assert "persona-sae label set LATENT TAG" in capsys.readouterr().out


def test_flags_take_no_value_so_a_positional_after_one_stays_a_positional():
    c = parse("models", "pull", "--force", "qwen-coder-0.5b")
    assert (c.force, c.alias) == (True, "qwen-coder-0.5b")
    for spelling, value in [("--no-resume", False), ("--noresume", False), ("--no_resume", False), ("--resume", True)]:
        assert parse("train", "--out", "o", "--resume", spelling).resume is value, spelling
    assert parse("train", "--out", "o", "--nosplice-eval", "--no-autocast").splice_eval is False
    assert parse("label", "--sae", "s", "--no-builtin").no_builtin and not parse("label", "--sae", "s").no_builtin
    assert parse("label", "--sae", "s", "--nono-builtin").no_builtin is False  # the old negative still clears it


# concept kept under one field name on several commands but with distinct meanings there (docs/flags.md)
DISTINCT = {"k": "train: TopK sparsity; examples: examples kept per latent (--top-k)"}


def test_one_flag_name_per_field_across_commands():
    """The same field on several commands has the same flag, and no command shows as its flag what
    another keeps only as an old spelling (the one exception: --k, TopK in train, deprecated in examples)."""
    from collections import defaultdict

    from persona_sae.cli import command_parsers, flag_names

    primary, old = defaultdict(set), set()
    for name, p in command_parsers().items():
        for field, (flag, olds) in flag_names(p).items():
            primary[field].add((flag, name))
            old |= set(olds)
    split = {f: sorted(v) for f, v in primary.items() if len({flag for flag, _ in v}) > 1 and f not in DISTINCT}
    assert not split, split
    shown = {flag for v in primary.values() for flag, _ in v}
    assert shown & old == {"--k"}


RENAMED = [  # (command line, field, value): every old spelling still parses to the renamed field
    (["activations", "--out", "o", "--max-len", "77"], "max_len", 77),
    (["activations", "--out", "o", "--max-tokens", "5k"], "max_tokens", 5000),
    (["activations", "--out", "o", "--column", "body"], "column", "body"),
    (["train", "--out", "o", "--model-batch-tokens", "512"], "model_batch_tokens", 512),
    (["rank", "--out", "o", "--sae", "s", "--base", "b"], "base", "b"),
    (["rank", "--out", "o", "--sae", "s", "--max-len", "64"], "max_len", 64),
    (["monitor", "--out", "o", "--sae", "s", "--base", "b"], "base", "b"),
    (["finetune", "--out", "o", "--data", "d", "--max-len", "64"], "max_len", 64),
    (["label", "--sae", "s", "--max-len", "64"], "max_len", 64),
    (["examples", "--out", "o", "--sae", "s", "--dataset", "d", "--max-len", "64"], "max_len", 64),
    (["examples", "--out", "o", "--sae", "s", "--dataset", "d", "--k", "7"], "k", 7),
    (["dashboard", "--out", "o", "--sae", "s", "--examples", "e", "--rank", "r"], "rank", "r"),
    (["steer", "--out", "o", "--sae", "s", "--latent", "3"], "latent", [3]),
]


@pytest.mark.parametrize("argv,field,value", RENAMED, ids=[" ".join(a[:1] + a[-2:-1]) for a, _, _ in RENAMED])
def test_old_spellings_still_parse_and_the_new_name_too(argv, field, value):
    from persona_sae.cli import command_parsers, flag_names

    assert getattr(parse(*argv), field) == value
    name = argv[0]
    flag, olds = flag_names(command_parsers()[name])[field]
    assert argv[-2] in olds and flag != argv[-2]  # the old spelling is hidden, the new one shown
    new = [*argv[:-2], flag, *([str(v) for v in value] if isinstance(value, list) else [str(value)])]
    assert getattr(parse(*new), field) == value


def test_examples_k_still_works_with_a_warning(capsys):
    assert parse("examples", "--out", "o", "--sae", "s", "--dataset", "d", "--k", "7").k == 7
    assert "--k is deprecated here: use --top-k" in capsys.readouterr().err
    assert parse("examples", "--out", "o", "--sae", "s", "--dataset", "d", "--top-k", "9").k == 9
    assert capsys.readouterr().err == ""
    assert parse("train", "--out", "o", "--k", "16").k == [16] and capsys.readouterr().err == ""  # TopK: no warning


def test_flags_page_lists_every_renamed_flag():
    import re

    from persona_sae.cli import command_parsers, flag_names

    text = (Path(__file__).parents[1] / "docs" / "flags.md").read_text(encoding="utf-8")
    rows = {}
    for ln in text.splitlines():
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if ln.startswith("| ") and len(cells) == 5:
            rows[cells[1].strip("`")] = set(re.findall(r"`(-[-\w]+)`", cells[2]))
    for name, p in command_parsers().items():
        for field, (flag, olds) in flag_names(p).items():
            olds = [o for o in olds if o.startswith("--")]
            if olds:
                assert flag in rows and set(olds) <= rows[flag], (name, field, flag, olds)


def test_saelens_and_sparsify_names_table_names_real_flags_and_saelens_fields(capsys):
    """docs/flags.md maps train's flags to SAELens' and sparsify's fields: every flag in the first column
    is a train option (an alias in parentheses is also listed in --help), every SAELens name is a field
    of the installed LanguageModelSAERunnerConfig, of a training SAE config (sae.*) or of its
    LoggingConfig (logger.*), and every train field with a counterpart is in the table."""
    import dataclasses
    import re

    import sae_lens as S
    from sae_lens.config import LoggingConfig

    from persona_sae.cli import command_parsers

    text = (Path(__file__).parents[1] / "docs" / "flags.md").read_text(encoding="utf-8")
    table = text.split("## Names in SAELens and sparsify", 1)[1]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in table.splitlines()
            if ln.startswith("| `--")]
    assert len(rows) > 25
    parser = command_parsers()["train"]
    options = parser._option_string_actions
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    helptext = capsys.readouterr().out
    runner = {f.name for f in dataclasses.fields(S.LanguageModelSAERunnerConfig)}
    sae_fields = {f.name for c in (S.TopKTrainingSAEConfig, S.BatchTopKTrainingSAEConfig, S.JumpReLUTrainingSAEConfig,
                                   S.StandardTrainingSAEConfig) for f in dataclasses.fields(c)} | {"architecture"}
    logger = {f.name for f in dataclasses.fields(LoggingConfig)}
    covered = set()
    for ours, saelens, sparsify, _ in rows:
        flags = re.findall(r"`(--[\w-]+)`", ours)
        for flag in flags:
            assert flag in options, flag
            covered.add(options[flag].dest[4:])
        for alias in re.findall(r"\(`(--[\w-]+)`\)", ours):
            assert alias in helptext, alias
        for name in re.findall(r"`([\w.]+)`", saelens):
            group, _, field = name.rpartition(".")
            assert field in {"": runner, "sae": sae_fields, "logger": logger}[group], name
        assert saelens and sparsify  # "—" where the library has no such setting
    fields = {a.dest[4:] for a in parser._actions if a.dest.startswith("cfg.") and a.option_strings}
    assert fields == covered, fields ^ covered
