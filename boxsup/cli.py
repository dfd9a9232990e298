"""``boxsup`` command line: data, proposals, train, evaluate, report.

    boxsup data [--data-root D]                       generate the toy benchmark, print its statistics
    boxsup proposals --dataset toy --split train --method mcg-ours [--workers N] [--shard i/n]
    boxsup train --supervision box [--k 5] [--epochs N] [any Config field as --field value]
    boxsup evaluate RUN_DIR [--scales 0.8 1 1.2] [--crf] [--submission OUT]
    boxsup report [--profile toy] [--only table1 fig4]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing


def _cmd_data(args) -> int:
    from .data import load_dataset
    from .data.stats import summary

    for split in ("train", "extra", "val", "test"):
        ds = load_dataset("toy", split, args.data_root)
        print(f"toy/{split}: {json.dumps(summary(ds), indent=None)}")
    return 0


def _add_config_args(p: argparse.ArgumentParser) -> None:
    from .config import Config

    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name])
        if "tuple" in hint:
            p.add_argument(flag, dest=f.name, type=float if "float" in hint else int, nargs="+")
        elif "bool" in hint:
            p.add_argument(flag, dest=f.name, type=lambda s: s.lower() in ("1", "true", "yes"))
        elif "int" in hint and "float" not in hint:
            p.add_argument(flag, dest=f.name, type=int)
        elif "float" in hint:
            p.add_argument(flag, dest=f.name, type=float)
        else:
            p.add_argument(flag, dest=f.name, type=str)


def _cmd_train(args) -> int:
    from .config import Config
    from .train import fit

    params = {k: v for k, v in vars(args).items() if k not in ("func", "command") and v is not None}
    cfg = Config(**params)
    out = fit(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 evaluates and reports
        return 0
    print(json.dumps({"run": str(out), **{k: v for k, v in json.loads((out / "metrics.json").read_text()).items()
                                          if k in ("mIoU", "pixel_acc")}}))
    return 0


def _cmd_report(args) -> int:
    from .report import build_reports

    params = {"profile": args.profile}
    if args.data_root:
        params["data_root"] = args.data_root
    index = build_reports(args.only, params, args.out, args.kernel)
    print(f"wrote {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boxsup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="generate the embedded benchmark and print its statistics")
    p.add_argument("--data-root", default=None)
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("proposals", help="pre-compute candidate segments for a dataset split")
    from .proposals import cli as proposals_cli
    proposals_cli.add_arguments(p)
    p.set_defaults(func=proposals_cli.run)

    p = sub.add_parser("train", help="train (or resume) one run; every Config field is a flag")
    _add_config_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run folder (scales, flip, dense CRF, VOC submission)")
    from . import evaluate as evaluate_mod
    evaluate_mod.add_arguments(p)
    p.set_defaults(func=evaluate_mod.run)

    p = sub.add_parser("report", help="execute the notebooks and render reports/ (make reports)")
    p.add_argument("--profile", default="toy", choices=("toy", "paper"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--only", nargs="+", default=None, help="notebook names, e.g. table1 fig4")
    p.add_argument("--out", default="reports")
    p.add_argument("--kernel", default="boxsup")
    p.set_defaults(func=_cmd_report)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:  # bad parameters or data (DataError is a ValueError)
        print(f"boxsup {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
