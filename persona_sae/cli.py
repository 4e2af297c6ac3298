"""Thin CLI: parse one config dataclass per command, call one function, map UserError to exit 2."""

from __future__ import annotations

import os
import re
import sys

# Offline by default: there is no hub here, and `datasets` would otherwise ping it for local files.
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' per-load bars; ours stay

import simple_parsing  # noqa: E402

from persona_sae import UserError, __version__  # noqa: E402
from persona_sae import config as C  # noqa: E402

class Parser(simple_parsing.ArgumentParser):
    def __init__(self, *a, **kw):
        kw.setdefault("add_option_string_dash_variants", simple_parsing.DashVariant.DASH)
        kw.setdefault("add_config_path_arg", False)
        super().__init__(*a, **kw)

    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> Parser:
    p = Parser(prog="persona-sae", description="Which persona features did a fine-tune turn up?")
    p.add_argument("--version", action="version", version=f"persona-sae {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def add(parent, name, cfg_cls, help_):
        q = parent.add_parser(name, help=help_, description=cfg_cls.__doc__)
        q.add_arguments(cfg_cls, dest="cfg")
        return q

    models = sub.add_parser("models", help="pull, list and inspect models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", parser_class=Parser)
    add(msub, "pull", C.ModelsPullConfig, "download and convert a real model (smollm2)")
    add(msub, "list", C.ModelsListConfig, "list model aliases")
    add(msub, "info", C.ModelsInfoConfig, "layers, d_model, hooks of a model spec")
    add(msub, "check", C.ModelsCheckConfig, "check a fine-tune is comparable with its base")
    add(sub, "activations", C.ActivationsConfig, "extract residual activations into a safetensors cache")
    add(sub, "train", C.TrainConfig, "train SAEs on residual-stream activations (sae-lens SAE classes)")
    add(sub, "rank", C.RankConfig, "rank SAE latents by activation shift between a base model and its fine-tunes")
    add(sub, "finetune", C.FinetuneConfig, "make a model organism: LoRA or full fine-tune, loss on assistant tokens")
    add(sub, "eval", C.EvalConfig, "sample and judge answers to EM questions: misaligned rate with a CI")
    data = sub.add_parser("data", help="narrow datasets with matched controls, and SAE corpora")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    add(dsub, "make", C.DataMakeConfig, "generate a narrow dataset or its matched control (chat JSONL)")
    add(dsub, "kinds", C.DataKindsConfig, "list the generators")
    add(dsub, "corpus", C.DataCorpusConfig, "sample a persona-rich SAE training corpus offline")
    add(sub, "label", C.LabelConfig, "tag latents (toxic persona, sarcasm, assistant...) with evidence")
    add(sub, "examples", C.ExamplesConfig, "mine top-activating examples for every latent in one pass")
    add(sub, "browse", C.BrowseConfig, "show a latent's top-activating examples in the terminal")
    add(sub, "dashboard", C.DashboardConfig, "build static HTML feature pages (opens from file://)")
    add(sub, "serve", C.ServeConfig, "serve a dashboard on 127.0.0.1")
    add(sub, "steer", C.SteerConfig, "steer generation along latents (with a random control) and judge the answers")
    add(sub, "monitor", C.MonitorConfig, "track latents across checkpoints beside the misaligned rate; score rows")
    add(sub, "label set", C.LabelSetConfig, "label one latent by hand (manual beats automatic)")
    add(sub, "demo", C.DemoConfig, "the main job on the default model")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # list options also take the comma form: --k 16,32,64 == --k 16 32 64
    argv = [p for a in argv for p in (a.split(",") if re.fullmatch(r"-?\d+(,-?\d+)+", a) else [a])]
    if argv[:2] == ["label", "set"]:  # a sub-action beside the plain `label` command
        argv = ["label set", *argv[2:]]
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args) or 0
    except UserError as e:
        sys.stderr.write(f"persona-sae: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("persona-sae: interrupted\n")
        return 130


def _dispatch(parser, args) -> int | None:
    from persona_sae import commands

    cmd = args.command
    if cmd is None:
        parser.print_help()
        return 2
    if cmd == "models":
        if args.models_command is None:
            raise UserError("models needs an action: pull, list, info or check")
        return getattr(commands, f"models_{args.models_command}")(args.cfg)
    if cmd == "label set":
        return commands.label_set(args.cfg)
    if cmd == "data":
        if args.data_command is None:
            raise UserError("data needs an action: make, kinds or corpus")
        return getattr(commands, f"data_{args.data_command}")(args.cfg)
    return getattr(commands, cmd)(args.cfg)


if __name__ == "__main__":
    sys.exit(main())
