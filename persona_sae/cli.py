"""Thin CLI: a table of commands, each a config dataclass, a stage function ``cfg -> Result`` and a
printer; parse, run, print, and map UserError to one line and exit 2. No work happens here."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import re
import sys

# Offline by default: there is no hub here, and `datasets` would otherwise ping it for local files.
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("WANDB_MODE", "disabled")  # sae-lens never logs by itself; train --wandb passes its mode
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help as a person reads it: ``--out OUT (required)``, ``--k INT [INT ...]``, ``--resume,
    --no-resume``, each option's spellings once with one metavar, and one default (none where the text
    already says it, or where it is empty)."""

    def _format_args(self, action, default_metavar):
        if action.nargs in ("*", "+"):  # one or more; simple_parsing's formatter showed the bare type
            return f"{action.metavar} [{action.metavar} ...]"
        return super()._format_args(action, default_metavar)

    def _format_action_invocation(self, action):
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{', '.join(action.option_strings)} {self._format_args(action, action.dest.upper())}"

    def _get_help_string(self, action):
        text, d = action.help or "", action.default
        if action.required:  # a positional is always required: its place in the usage line says so
            return text + " (required)" * bool(action.option_strings)
        if "(default" in text or d in (None, "", [], argparse.SUPPRESS) or isinstance(action, argparse._HelpAction):
            return text
        if isinstance(action, Flag):
            shown = "on" if d else "off"
        elif isinstance(d, (list, tuple)):
            shown = " ".join(map(str, d))
        else:
            shown = str(d)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Flag(argparse.Action):
    """A boolean option: ``--resume`` sets it, ``--no-resume`` clears it, and takes no value (so
    ``models pull --force smollm2`` is not read as ``--force=smollm2``). ``negatives`` holds every
    spelling that clears it, the older ``--noresume`` too; a field named ``no_*`` has no negative."""

    negatives: frozenset = frozenset()

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.negatives)

    def format_usage(self):
        return self.option_strings[0]


def _dashed(name: str) -> str:
    return "--" + name.lstrip("-").replace("_", "-")


class Parser(simple_parsing.ArgumentParser):
    """simple_parsing's parser with our conventions: --d-sae and --d_sae both parse (help shows the dash
    spelling), int options take 2_000_000, 2e6 and 2M, list options also 16,32,64, errors are one line,
    and a command's parser reads --config FILE into its defaults before the flags, which override it.
    Help: one section of options (no dataclass group), named positionals and metavars, --x/--no-x flags,
    and each field under its one flag name (config.renamed), its old spellings parsing but not shown."""

    command: str | None = None  # set on a command's parser: its name, for --config
    config_cls: type | None = None

    def __init__(self, *a, **kw):
        kw.setdefault("add_option_string_dash_variants", simple_parsing.DashVariant.UNDERSCORE_AND_DASH)
        kw.setdefault("add_config_path_arg", False)  # its --config_path takes nargs="*": it would eat a positional
        kw.setdefault("formatter_class", HelpFormatter)
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
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)} if self.config_cls else {}
        for a in self._actions:
            meta = fields[a.dest.partition(".")[2]].metadata if a.dest.startswith("cfg.") else {}
            hidden = set()  # a renamed field's old spellings (config.renamed): they parse, --help omits them
            if meta.get("flag"):
                hidden = set(a.option_strings) - {_dashed(meta["flag"]), *map(_dashed, meta["listed"])}
            # --d_sae still parses (the parser's table keeps it); help and errors show --d-sae
            shown = [o for o in a.option_strings if "_" not in o and o not in hidden] or a.option_strings
            # the one name first (the metavar's too), then long spellings before -k
            if a.dest.startswith("cfg."):
                shown.sort(key=lambda o: (o != _dashed(meta.get("flag", "")), not o.startswith("--")))
            a.option_strings = shown
            if isinstance(a, simple_parsing.helpers.custom_actions.BooleanOptionalAction):
                _to_flag(self, a)
            if a.type is int:
                a.type = configfile.int_arg
                if a.nargs in ("*", "+") and type(a) is argparse._StoreAction:
                    a.type, a.__class__ = configfile.ints_arg, configfile.FlatStore
            if a.dest.startswith("cfg.") and a.nargs != 0:
                a.metavar = _metavar(a)
            for o in hidden if meta.get("deprecated") else ():
                self._option_string_actions[o] = _Deprecated(a, o)
        self._one_section()

    def _one_section(self):
        """Move the dataclass's argument group (titled "TrainConfig ['cfg']", repeating the description)
        into argparse's own positional and option sections."""
        for g in list(self._action_groups):
            if g in (self._positionals, self._optionals):
                continue
            for a in g._group_actions:
                (self._optionals if a.option_strings else self._positionals)._group_actions.append(a)
            self._action_groups.remove(g)


def _metavar(a) -> str:
    """A positional's field name (LATENT); INT or FLOAT for options' numbers (they take 2M, 1e-3);
    otherwise the option's name."""
    if not a.option_strings:
        return a.dest.partition(".")[2].upper()
    if a.type in (configfile.int_arg, configfile.ints_arg):
        return "INT"
    if a.type is float:
        return "FLOAT"
    return a.option_strings[0].lstrip("-").replace("-", "_").upper()


def _to_flag(parser, a):
    """simple_parsing's bool action shows ``--resume bool, --noresume bool`` (``--nono-builtin`` for a
    ``no_builtin`` field) and takes a value; make it a :class:`Flag` shown as ``--resume, --no-resume``,
    keeping the older negative spellings in the parser's table."""
    negatives = set(a.negative_option_strings)
    positive = [o for o in a.option_strings if o not in negatives]
    name = a.dest.partition(".")[2]
    shown = [] if name.startswith("no_") else [_dashed("no_" + name)]  # --no-builtin is the flag itself
    for o in shown + ["--no_" + name] * bool(shown):
        if parser._option_string_actions.setdefault(o, a) is not a:
            raise RuntimeError(f"{o} is taken by another option")  # a config with fields x and no_x
        negatives.add(o)
    a.__class__, a.nargs, a.metavar, a.type = Flag, 0, None, None
    a.negatives, a.option_strings = frozenset(negatives), positive + shown
    a.help = (a.help or "").replace(" (default: %(default)s)", "")


class _Deprecated(argparse.Action):
    """An old spelling that means another thing on another command (``examples --k``; ``--k`` is TopK in train):
    it still works, with a warning naming the one to use."""

    def __init__(self, action, spelling: str):
        self.__dict__.update(action.__dict__)  # same dest, type and nargs: argparse parses it alike
        self.action, self.spelling = action, spelling

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stderr.write(f"persona-sae: warning: {self.spelling} is deprecated here: use {self.option_strings[0]}\n")
        self.action(parser, namespace, values, option_string)


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
    "data tokenize": (C.DataTokenizeConfig, "data:tokenize", "data_tokenize",
                      "tokenize a dataset once into a token cache that train reads without the tokenizer"),
    "label": (C.LabelConfig, "label:run", "label", "tag latents (toxic persona, sarcasm, assistant...) with evidence"),
    "label set": (C.LabelSetConfig, "label:set_label", "label_set", "label one latent by hand (manual beats automatic)"),
    "examples": (C.ExamplesConfig, "examples:run", "examples", "mine top-activating examples for every latent in one pass"),
    "browse": (C.BrowseConfig, "browse:run", "browse", "show a latent's top-activating examples in the terminal"),
    "dashboard": (C.DashboardConfig, "dashboard:run", "dashboard", "build static HTML feature pages (opens from file://)"),
    "serve": (C.ServeConfig, "dashboard:serve", None, "serve a dashboard on 127.0.0.1"),
    "export": (C.ExportConfig, "export:run", "export",
               "write latents as Neuronpedia or SAEDashboard JSON (top activations, density, logit lens, labels)"),
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
SUB_ACTIONS = {"label set"}  # sub-actions of a command that also runs alone: parsed as one name
SUB_ACTION_OF = {"label": "Also: persona-sae label set LATENT TAG labels one latent by hand (see its --help)."}
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
        # `label set` is parsed as one name (main joins the two words) but not listed as a command with a
        # space in it: `label --help` names it
        listed = {} if name in SUB_ACTIONS else {"help": help_}
        description = inspect.cleandoc(cfg_cls.__doc__ or "")
        if name in SUB_ACTION_OF:
            description += f"\n\n{SUB_ACTION_OF[name]}"
        q = parent.add_parser(name, description=description, **listed)
        q.command, q.config_cls = command, cfg_cls
        q.add_argument("--config", metavar="FILE", action=_ConfigOption, default=argparse.SUPPRESS,
                       help="YAML or JSON file of option values (a run.json replays its run); flags override it")
        q.add_arguments(cfg_cls, dest="cfg")
    return p


def command_parsers() -> dict[str, Parser]:
    """Each command's parser under its COMMANDS name, its arguments added (tests and docs read them)."""
    top, out = build_parser(), {}

    def subs(p):
        return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})

    for name in COMMANDS:
        head, _, action = name.partition(" ")
        q = subs(top)[name] if name in SUB_ACTIONS or not action else subs(subs(top)[head])[action]
        q._preprocessing()
        out[name] = q
    return out


def flag_names(parser: Parser) -> dict[str, tuple[str, list[str]]]:
    """field -> (the option --help shows first, the older spellings that parse but are not shown)."""
    out = {}
    for a in parser._actions:
        if a.dest.startswith("cfg.") and a.option_strings:
            table = [o for o, b in parser._option_string_actions.items() if getattr(b, "action", b) is a]
            old = [o for o in table if o not in a.option_strings and "_" not in o
                   and not (isinstance(a, Flag) and o.startswith("--no"))]  # a flag's negatives: tested apart
            out[a.dest[4:]] = (a.option_strings[0], sorted(old))
    return out


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


def _latent_option(argv: list[str]) -> list[str]:
    """``browse --latent N`` (the form `rank` printed as a hint before the latent became positional,
    kept in run logs) as ``browse N``."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--latent" and i + 1 < len(argv):
            return [argv[0], argv[i + 1], *argv[1:i], *argv[i + 2:]]
        if a.startswith("--latent="):
            return [argv[0], a.partition("=")[2], *argv[1:i], *argv[i + 1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["label", "set"]:  # a sub-action beside the plain `label` command
        argv = ["label set", *argv[2:]]
    if argv[:1] == ["browse"]:
        argv = _latent_option(argv)
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
