"""Thin CLI: a table of commands, each a config dataclass, a stage function ``cfg -> Result`` and a
printer; parse, run, print, and map UserError to one line and exit 2. No work happens here."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

# Offline by default: there is no hub here, and `datasets` would otherwise ping it for local files.
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' per-load bars; ours stay

import simple_parsing  # noqa: E402

from persona_sae import (  # noqa: E402
    UserError,
    __version__,
    report,  # noqa: E402
)
from persona_sae import config as C  # noqa: E402
from persona_sae import configfile  # noqa: E402

# a value, not an option: -1, -0.5, -2M, and the list form -1,0,1 (argparse's own test knows only -1 and -0.5)
NEGATIVE_VALUE = re.compile(r"^-\d[\d_.,eE+-]*[kKmMgG]?$|^-\.\d")


class Parser(simple_parsing.ArgumentParser):
    """simple_parsing's parser with our conventions: --d-sae and --d_sae both parse (help shows the dash
    spelling), int options take 2_000_000, 2e6 and 2M, list options also 16,32,64, errors are one line,
    and a command's parser reads --config FILE into its defaults before the flags, which override it."""

    command: str | None = None  # set on a command's parser: its name, for --config
    config_cls: type | None = None

    def __init__(self, *a, **kw):
        kw.setdefault("add_option_string_dash_variants", simple_parsing.DashVariant.UNDERSCORE_AND_DASH)
        kw.setdefault("add_config_path_arg", False)  # its --config_path takes nargs="*": it would eat a positional
        super().__init__(*a, **kw)
        self._negative_number_matcher = NEGATIVE_VALUE

    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None, attempt_to_reorder=False):
        if self.config_cls is not None:
            args, path = _pop_config(list(sys.argv[1:] if args is None else args))
            if path is not None:  # simple_parsing's config-file defaults, fed our checked values
                self.set_defaults(cfg=configfile.read_config(path, self.config_cls, self.command))
        return super().parse_known_args(args, namespace, attempt_to_reorder)

    def _preprocessing(self, args=(), namespace=None):
        first = not self._preprocessing_done
        super()._preprocessing(args, namespace)
        if not first:
            return
        for a in self._actions:
            # --d_sae still parses (the parser's table keeps it); help and errors show --d-sae
            a.option_strings = [o for o in a.option_strings if "_" not in o] or a.option_strings
            if a.type is int:
                a.type = configfile.int_arg
                if a.nargs in ("*", "+") and type(a) is argparse._StoreAction:
                    a.type, a.__class__ = configfile.ints_arg, configfile.FlatStore


class _ConfigOption(argparse.Action):
    """--config in --help; the file itself is read before parsing (Parser.parse_known_args)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("write --config in full: an abbreviation of it is not read")


def _pop_config(args: list[str]) -> tuple[list[str], str | None]:
    """Take --config FILE (or --config=FILE) out of a command's arguments."""
    rest, paths, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a == "--config":
            if i + 1 >= len(args):
                raise UserError("--config needs a FILE")
            paths.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--config="):
            paths.append(a.partition("=")[2])
        else:
            rest.append(a)
        i += 1
    if len(paths) > 1:
        raise UserError("give one --config FILE (flags override its values)")
    return rest, (paths[0] if paths else None)


# name -> (Config, the stage function cfg -> Result, its printer, help); "a b" is sub-action b of a
COMMANDS = {
    "models pull": (C.ModelsPullConfig, "models:pull", "models_pull", "download and convert a real model (smollm2)"),
    "models list": (C.ModelsListConfig, "models:list_models", "models_list", "list model aliases"),
    "models info": (C.ModelsInfoConfig, "models:info", "models_info", "layers, d_model, hooks of a model spec"),
    "models check": (C.ModelsCheckConfig, "models:check", "models_check", "check a fine-tune is comparable with its base"),
    "activations": (C.ActivationsConfig, "activations:run", "activations",
                    "extract residual activations into a safetensors cache"),
    "train": (C.TrainConfig, "train:run", "train", "train SAEs on residual-stream activations (sae-lens SAE classes)"),
    "rank": (C.RankConfig, "rank:run", "rank", "rank SAE latents by activation shift between a base model and its fine-tunes"),
    "finetune": (C.FinetuneConfig, "finetune:run", "finetune",
                 "make a model organism: LoRA or full fine-tune, loss on assistant tokens"),
    "eval": (C.EvalConfig, "eval:run", "eval", "sample and judge answers to EM questions: misaligned rate with a CI"),
    "data make": (C.DataMakeConfig, "data:make", "data_make", "generate a narrow dataset or its matched control (chat JSONL)"),
    "data kinds": (C.DataKindsConfig, "data:kinds", "data_kinds", "list the generators"),
    "data corpus": (C.DataCorpusConfig, "data:make_corpus", "data_corpus", "sample a persona-rich SAE training corpus offline"),
    "data persona": (C.DataPersonaConfig, "data:make_persona", "data_persona",
                     "distill a persona organism's training set from the model's own system-prompted answers"),
    "data filter": (C.DataFilterConfig, "data:filter_set", "data_filter",
                    "keep the rows of a chat set that a judge calls misaligned (or aligned), with the rejection rate"),
    "data sources": (C.DataSourcesConfig, "data:list_sources", "data_sources", "list the public datasets the studies use"),
    "data fetch": (C.DataFetchConfig, "data:fetch", "data_fetch", "install a public dataset, sha256-checked"),
    "label": (C.LabelConfig, "label:run", "label", "tag latents (toxic persona, sarcasm, assistant...) with evidence"),
    "label set": (C.LabelSetConfig, "label:set_label", "label_set", "label one latent by hand (manual beats automatic)"),
    "examples": (C.ExamplesConfig, "examples:run", "examples", "mine top-activating examples for every latent in one pass"),
    "browse": (C.BrowseConfig, "browse:run", "browse", "show a latent's top-activating examples in the terminal"),
    "dashboard": (C.DashboardConfig, "dashboard:run", "dashboard", "build static HTML feature pages (opens from file://)"),
    "serve": (C.ServeConfig, "dashboard:serve", None, "serve a dashboard on 127.0.0.1"),
    "steer": (C.SteerConfig, "steer:run", "steer",
              "steer generation along latents (with a random control) and judge the answers"),
    "monitor": (C.MonitorConfig, "monitor:run", "monitor",
                "track latents across checkpoints beside the misaligned rate; score rows"),
    "judge validate": (C.JudgeValidateConfig, "judge:validate", "judge_validate",
                       "measure a judge against labelled answers: AUROC, length-matched AUROC, calibration, base flag rate"),
    "judge fit": (C.JudgeFitConfig, "judge:fit", "judge_fit",
                  "fit the fitted judge (a probe on a reference model) on labelled answers' fit split"),
    "demo": (C.DemoConfig, "demo:run", "demo", "the main job on the default model"),
}
GROUPS = {"models": "pull, list and inspect models",
          "data": "narrow datasets with matched controls, SAE corpora, public datasets",
          "judge": "fit and validate judges against labelled answers"}


def build_parser() -> Parser:
    p = Parser(prog="persona-sae", description="Which persona features did a fine-tune turn up?")
    p.add_argument("--version", action="version", version=f"persona-sae {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    groups = {}
    for name, (cfg_cls, _, _, help_) in COMMANDS.items():
        command, (head, _, action) = name, name.partition(" ")
        parent = sub
        if action and head in GROUPS:
            if head not in groups:
                g = sub.add_parser(head, help=GROUPS[head])
                groups[head] = g.add_subparsers(dest=f"{head}_command", metavar="ACTION", parser_class=Parser)
            parent, name = groups[head], action
        q = parent.add_parser(name, help=help_, description=cfg_cls.__doc__)
        q.command, q.config_cls = command, cfg_cls
        q.add_argument("--config", metavar="FILE", action=_ConfigOption, default=argparse.SUPPRESS,
                       help="YAML or JSON file of option values (a run.json replays its run); flags override it")
        q.add_arguments(cfg_cls, dest="cfg")
    return p


def _refused(e: BaseException, out, existed) -> int:
    """One line on its own line (any progress bar closed first), nothing left behind, exit 2. An OSError
    is I/O no config could foresee (a read-only or full disk, a path that is a file): named, not traced."""
    from tqdm import tqdm

    from persona_sae.runs import tidy_refused

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    if isinstance(e, OSError) and not isinstance(e, UserError):
        where = f": {e.filename}" if e.filename else ""
        e = f"{e.strerror or type(e).__name__}{where}" + (f" -> {e.filename2}" if e.filename2 else "")
    tidy_refused(out, bool(existed))
    sys.stderr.write(f"persona-sae: error: {e}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["label", "set"]:  # a sub-action beside the plain `label` command
        argv = ["label set", *argv[2:]]
    out = existed = None
    try:
        args = parser.parse_args(argv)  # configs check their own values in __post_init__
        out = getattr(args.cfg, "out", None) if hasattr(args, "cfg") else None
        existed = bool(out) and os.path.exists(out)
        name = args.command
        if name is None:
            parser.print_help()
            return 2
        if name in GROUPS:
            action = getattr(args, f"{name}_command")
            if action is None:
                actions = [c.partition(" ")[2] for c in COMMANDS if c.startswith(name + " ")]
                raise UserError(f"{name} needs an action: {', '.join(actions[:-1])} or {actions[-1]}")
            name = f"{name} {action}"
        _, target, printer, _ = COMMANDS[name]
        module, fn = target.split(":")
        run = getattr(importlib.import_module(f"persona_sae.stages.{module}"), fn)
        if name == "serve":  # runs until interrupted: say where once the socket is bound
            run(args.cfg, ready=report.serve_ready)
            return 0
        getattr(report, printer)(args.cfg, run(args.cfg))
        return 0
    except (UserError, OSError) as e:
        return _refused(e, out, existed)
    except KeyboardInterrupt:
        sys.stderr.write("persona-sae: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
