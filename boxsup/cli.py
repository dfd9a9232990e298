"""``boxsup`` command line: data, pretrain, proposals, train, evaluate, report.

    boxsup data [--data-root D]                       generate the toy benchmark, print its statistics
    boxsup pretrain [--data-root D]                   pre-train the toy network's body on the toy ImageNet
    boxsup proposals --dataset toy --split train --method mcg-ours [--workers N] [--shard i/n]
    boxsup train --supervision box [--k 5] [--epochs N] [any Config field as --field value]
    boxsup evaluate RUN_DIR [--scales 0.8 1 1.2] [--crf] [--submission OUT]
    boxsup report [--profile toy] [--only table1 fig4]

Every command ends with exit code 2 and one line naming the problem on bad parameters or data.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path

from . import runs
from .config import ARCHS, ER_NORMS, EXTRAS, PROFILES, PROPOSALS, SUPERVISIONS, Config
from .crf import CRFParams, require_crf
from .data import VOCLayout, default_data_root, load_dataset
from .data.stats import summary
from .evaluate import evaluate_run, submit_run
from .experiments import train_run
from .pretrain import pretrain_toyfcn
from .proposals.generators import METHODS
from .proposals.store import ProposalStore, cache_root, parse_shard, precompute, store_dir, store_quality
from .report import build_reports

CHOICES = {"profile": PROFILES, "supervision": SUPERVISIONS, "extra": EXTRAS, "proposals": PROPOSALS,
           "arch": ARCHS, "er_norm": ER_NORMS}


# --- data and pre-training ---------------------------------------------------------------------------

def _cmd_data(args) -> int:
    for split in ("train", "extra", "val", "test"):
        print(f"toy/{split}: {json.dumps(summary(load_dataset('toy', split, args.data_root)))}")
    return 0


def _cmd_pretrain(args) -> int:
    path = pretrain_toyfcn(args.data_root, seed=args.seed)
    print(f"pre-trained toy body: {path}")
    return 0


# --- proposals ---------------------------------------------------------------------------------------

def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected key=value")
    key, val = text.split("=", 1)
    try:
        return key, json.loads(val)  # numbers, lists, true/false
    except json.JSONDecodeError:
        return key, val


def _add_proposals_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="toy", help="dataset name (toy, voc2012-aug, coco, ...) or a "
                   "VOC-layout folder")
    p.add_argument("--split", default="train", help="split name, a .txt list, or 'all' (every image "
                   "of a VOC-layout folder)")
    p.add_argument("--method", default="mcg-ours", choices=METHODS)
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--shard", default="0/1", help="i/n: this process takes images i, i+n, ... (default 0/1)")
    p.add_argument("--data-root", default=None, help="root of the datasets (default: the project's data/)")
    p.add_argument("--out", default=None, help="proposal cache folder (default <data-root>/proposals)")
    p.add_argument("--param", action="append", type=_parse_param, default=[], metavar="KEY=VALUE",
                   help="generator parameter, repeatable (e.g. max_candidates=2000, mcg_dir=/data/MCG)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of the shard")
    p.add_argument("--quality", action="store_true", help="afterwards print ABO / recall of the stored "
                   "candidates against the instance masks (images that have masks)")
    p.add_argument("--no-progress", action="store_true")


def _cmd_proposals(args) -> int:
    shard = parse_shard(args.shard)
    params = dict(args.param)
    split = None if args.split == "all" else args.split
    root = default_data_root(args.data_root)
    if Path(args.dataset).is_dir():
        dataset = VOCLayout(args.dataset, split, masks="optional")
    else:
        dataset = load_dataset(args.dataset, split, args.data_root)
    if args.method == "mcg" and "mcg_dir" not in params:
        params["mcg_dir"] = os.environ.get("BOXSUP_MCG_DIR") or str(root / "MCG")
    key = {k: v for k, v in params.items() if k != "mcg_dir"}  # where the files live is not a parameter
    store = ProposalStore(store_dir(cache_root(root, args.out), args.dataset, split, args.method, key))
    res = precompute(dataset, store, args.method, params, workers=args.workers, shard=shard,
                     progress=not args.no_progress, limit=args.limit)
    print(f"{store.root}: {res['computed']} computed, {res['skipped']} already there, {res['redone']} redone "
          f"(damaged files), {res['total']} in shard {shard[0]}/{shard[1]}")
    if args.quality:
        print(json.dumps(store_quality(dataset, store, shard, args.limit), indent=1))
    return 0


# --- train -------------------------------------------------------------------------------------------

def _add_config_args(p: argparse.ArgumentParser) -> None:
    """Every Config field as a flag: choices from the vocabularies, ``--x/--no-x`` for booleans."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name])
        default = "the profile's" if f.default is None else f"{f.default!r}"
        kw: dict = {"dest": f.name, "default": None, "help": f"default: {default}"}
        if f.name in CHOICES:
            kw["choices"] = CHOICES[f.name]
        if "tuple" in hint:
            p.add_argument(flag, type=float if "float" in hint else int, nargs="+", **kw)
        elif "bool" in hint:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif "int" in hint and "float" not in hint:
            p.add_argument(flag, type=int, **kw)
        elif "float" in hint:
            p.add_argument(flag, type=float, **kw)
        else:
            p.add_argument(flag, type=str, **kw)


def _cmd_train(args) -> int:
    params = {k: v for k, v in vars(args).items() if k not in ("func", "command") and v is not None}
    cfg = Config(**params)
    out = train_run(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 evaluates and reports
        return 0
    m = runs.read_metrics(out)
    print(f"{out}: {cfg.eval_split} mIoU {100 * m['mIoU']:.2f}%  pixel acc {100 * m['pixel_acc']:.2f}%")
    return 0


# --- evaluate ----------------------------------------------------------------------------------------

def _add_evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run folder (config.json + last.pth)")
    p.add_argument("--split", default=None, help="dataset split (default: the run's eval split)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="test scales whose score maps are averaged (BoxSup+: 0.8 1 1.2)")
    p.add_argument("--flip", action="store_true", help="also average the horizontally flipped image")
    p.add_argument("--crf", action="store_true", help="dense CRF post-processing (needs pydensecrf)")
    p.add_argument("--crf-params", default=None,
                   help="JSON with CRF parameters, or a search_crf_params cache (its 'best' is used)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the run's)")
    p.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--workers", type=int, default=1, help="processes for the CRF (default: 1)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--trimap", type=int, nargs="*", default=None, metavar="WIDTH",
                   help="also report trimap band mIoU for these widths (Fig. 4)")
    p.add_argument("--submission", default=None, metavar="OUT",
                   help="write the VOC test-server PNGs and results.tgz under OUT instead of scoring")


def _crf_params(args) -> CRFParams | None:
    if not args.crf:
        return None
    require_crf()
    if args.crf_params is None:
        return CRFParams()
    try:
        data = json.loads(Path(args.crf_params).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--crf-params {args.crf_params}: not a readable JSON file ({e})") from e
    return CRFParams.from_dict(data["best"] if "best" in data else data)


def _cmd_evaluate(args) -> int:
    crf = _crf_params(args)
    common = dict(flip=args.flip, crf=crf, device=args.device, workers=args.workers, batch_size=args.batch_size)
    if args.submission:
        tgz = submit_run(args.run_dir, args.submission, args.scales, split=args.split or "test",
                         max_images=args.max_images, **common)
        print(f"wrote {tgz}")
        return 0
    res = evaluate_run(args.run_dir, args.split, args.scales, trimap_widths=args.trimap or None,
                       max_images=args.max_images, **common)
    print(f"{res['split']}: mIoU {100 * res['mIoU']:.2f}%  pixel acc {100 * res['pixel_acc']:.2f}%  "
          f"({res['num_images']} images, {res['seconds']:.1f} s) -> {args.run_dir}")
    return 0


# --- report ------------------------------------------------------------------------------------------

def _cmd_report(args) -> int:
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

    p = sub.add_parser("pretrain", help="pre-train the toy network's body on the toy ImageNet (cached)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("proposals", help="pre-compute candidate segments for a dataset split")
    _add_proposals_args(p)
    p.set_defaults(func=_cmd_proposals)

    p = sub.add_parser("train", help="train (or resume) one run; every Config field is a flag")
    _add_config_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run folder (scales, flip, dense CRF, VOC submission)")
    _add_evaluate_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("report", help="execute the notebooks and render reports/ (make reports)")
    p.add_argument("--profile", default="toy", choices=PROFILES)
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
