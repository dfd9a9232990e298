"""``boxsup`` command line: data, pretrain, proposals, train, evaluate, report.

    boxsup data [--data-root D] [--toy-version N]     generate the toy benchmark, print its statistics
    boxsup pretrain [--data-root D]                   pre-train the toy network's body on the toy ImageNet
    boxsup proposals --dataset toy --split train --method mcg-ours [--workers N] [--shard i/n]
    boxsup train --supervision box [--k 5] [--epochs N] [any Config field as --field value]
    boxsup evaluate RUN_DIR [--scales 0.8 1 1.2] [--crf] [--submission OUT]
    boxsup report [--profile toy] [--only table1 fig4] [--dataset FOLDER] [--scratch] [--no-photos] [--grabcut-start]

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

import torch

from . import runs
from .config import (ARCHS, DEFAULTS, ER_NORMS, EXTRAS, FIELD_HELP, PRECISIONS, PROFILES, PROPOSALS, SUPERVISIONS,
                     Config)
from .crf import CRFParams, require_crf
from .data import VOCLayout, default_data_root, load_dataset
from .data.paths import from_root
from .data.stats import summary
from .data.synthetic import VERSION, VERSIONS, ToySpec, ensure_toy, toy_version
from .evaluate import evaluate_run, submit_run
from .experiments import train_run
from .labels import split_spec
from .models import WEIGHTS_HELP, describe_start, toy_pretrained_path
from .pretrain import pretrain_toyfcn
from .proposals.generators import METHODS
from .proposals.store import (ProposalStore, cache_root, dataset_ids, parse_shard, precompute, store_dir,
                              store_quality)
from .report import build_reports

CHOICES = {"profile": PROFILES, "supervision": SUPERVISIONS, "extra": EXTRAS, "proposals": PROPOSALS,
           "arch": ARCHS, "er_norm": ER_NORMS, "precision": PRECISIONS}


# --- data and pre-training ---------------------------------------------------------------------------

def _table(rows: list[dict], cols: list[str]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    num = [all(row[i].replace(".", "", 1).replace("-", "", 1).isdigit() for row in cells) for i in range(len(cols))]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, width, num)).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in width])] + [line(row) for row in cells])


def _cmd_data(args) -> int:
    if args.toy_version is not None:  # pins the root to that version (every later use keeps it)
        ensure_toy(args.data_root, ToySpec(version=args.toy_version))
    rows, fill = [], {}
    for split in ("train", "extra", "val", "test"):
        s = summary(load_dataset("toy", split, args.data_root))
        rows.append({"split": f"toy/{split}", "images": s["images"], "objects/image": f"{s['objects_per_image']:.2f}",
                     "max objects": s["max_objects_per_image"], "image size": s["image_size"],
                     "box fill": f"{s['mean_box_fill']:.2f}", "box area / image": f"{s['mean_box_area_frac']:.2f}"})
        fill = fill or s["box_fill_per_class"]
    print(f"embedded benchmark version {toy_version(args.data_root)} in {default_data_root(args.data_root)}")
    print(_table(rows, list(rows[0])))
    print("box fill per class (toy/train; object pixels / box pixels, lower = harder from boxes): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(fill.items(), key=lambda kv: -kv[1])))
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
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--shard", default="0/1", help="i/n: this process takes images i, i+n, ...")
    p.add_argument("--data-root", default=None, help="root of the datasets (default: the project's data/)")
    p.add_argument("--out", default=None, help="proposal cache folder (default <data-root>/proposals)")
    p.add_argument("--param", action="append", type=_parse_param, default=[], metavar="KEY=VALUE",
                   help="generator parameter, repeatable (e.g. max_candidates=2000, mcg_dir=/data/MCG)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of the shard")
    p.add_argument("--quality", action="store_true", help="afterwards print ABO / recall of the stored "
                   "candidates against the instance masks (images that have masks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


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
        q = store_quality(dataset, store, shard, args.limit)
        ids = dataset_ids(dataset)
        secs = [store.load(ids[p]).meta.get("seconds") for p in list(range(shard[0], len(ids), shard[1]))[:args.limit]]
        secs = [t for t in secs if isinstance(t, (int, float))]  # each file records its compute time
        sec = sum(secs) / len(secs) if secs else float("nan")
        print(f"quality: ABO {100 * q['abo']:.1f}%  recall@0.5 {100 * q['recall50']:.1f}%  recall@0.7 "
              f"{100 * q['recall70']:.1f}%  {q['mean_candidates']:.1f} candidates / image  {sec:.3f} s / image "
              f"(when computed)  ({q['instances']} instances, {q['images']} images)")
    return 0


def _check_dataset_path(name: str) -> None:
    """A dataset given as a path that is not there: say so (not 'unknown dataset')."""
    if (os.sep in name or name.startswith((".", "~"))) and not from_root(name).exists():  # as Config reads it
        raise FileNotFoundError(f"dataset path {name!r} does not exist (looked at {from_root(name).resolve()})")


# --- train -------------------------------------------------------------------------------------------

TRAIN_ONLY = ("force", "dry_run")  # flags of the command, not Config fields


def _default_text(name: str, default) -> str:
    """A field's default as help shows it: the profiles' values for fields the profile fills."""
    if default is None and any(name in d for d in DEFAULTS.values()):
        return "; ".join(f"{p}: {d[name]}" for p, d in DEFAULTS.items() if name in d)
    return "none" if default is None else str(default)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    """Every Config field as a flag: help from ``config.FIELD_HELP``, choices from the vocabularies,
    the default (the profile's where the profile sets it), ``--x/--no-x`` for booleans."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name])
        kw: dict = {"dest": f.name, "default": None,
                    "help": f"{FIELD_HELP[f.name]} (default: {_default_text(f.name, f.default)})"}
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
    p.add_argument("--force", action="store_true", help="delete the run's folder first and train it again "
                   "(default: a finished run is reused, an unfinished one resumed)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config, the run folder, its state "
                   "and the plan (pre-training, candidates, epochs), and train nothing")


def _candidates_todo(cfg: Config) -> list[str]:
    """Per candidate store the run needs: how many of its images still have no candidates."""
    specs = []
    if cfg.supervision in ("box", "semi"):
        specs.append(split_spec(cfg.dataset, cfg.train_split))
    if cfg.extra == "boxes":
        specs.append(split_spec(cfg.extra_dataset, "extra"))
    out = []
    for name, split in specs:
        ids = dataset_ids(load_dataset(name, split, cfg.data_root, masks="optional"))
        store = ProposalStore(store_dir(cache_root(cfg.data_root, cfg.proposals_dir), name, split, cfg.proposals))
        todo = sum(not store.has(i) for i in ids)
        out.append(f"{cfg.proposals} on {name}/{split}: " + (f"{todo} of {len(ids)} images to compute" if todo
                                                           else f"all {len(ids)} images stored"))
    return out or ["none needed (no box-supervised images)"]


def _pretraining(cfg: Config) -> str:
    if not cfg.pretrained:
        return "none (random weights)"
    if cfg.arch == "toyfcn":
        path = toy_pretrained_path(cfg.data_root)
        return f"done ({path})" if path.is_file() else f"needed: the toy body on the toy ImageNet, cached in {path}"
    file = describe_start(cfg.arch, True)["file"]
    have = (Path(torch.hub.get_dir()) / "checkpoints" / file).is_file()
    return f"ImageNet weights {file}: " + ("present" if have else "missing. " + WEIGHTS_HELP.format(file))


def _dry_run(cfg: Config) -> None:
    st = runs.status(cfg)
    d = cfg.to_dict()  # JSON, one field a line
    print("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}")
    print(f"data root: {default_data_root(cfg.data_root)}")
    print(f"run folder: {st['folder']}")
    if st["finished"]:
        print("state: finished (metrics.json): `boxsup train` reuses it; --force retrains it")
    elif st["resumable"]:
        print(f"state: resumable, {st['epochs_done']} of {st['epochs']} epochs done")
    else:
        print("state: not started")
    print(f"plan:\n  pre-training: {_pretraining(cfg)}")
    for line in _candidates_todo(cfg):
        print(f"  candidates: {line}")
    left = 0 if st["finished"] else cfg.epochs - st["epochs_done"]
    relabel = "a relabel of the box-supervised images + " if cfg.uses_proposals else ""
    print(f"  training: {left} of {cfg.epochs} epochs to run, each {relabel}{cfg.passes} pass(es) over the "
          f"training data; then scoring on {cfg.eval_split}")
    if left:
        print(f"  {runs.describe_expected(cfg, left)}")


def _cmd_train(args) -> int:
    params = {k: v for k, v in vars(args).items() if k not in ("func", "command", *TRAIN_ONLY) and v is not None}
    cfg = Config(**params)
    _check_dataset_path(cfg.dataset)
    if args.dry_run:
        _dry_run(cfg)
        return 0
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if args.force and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # other ranks could still see the old run
        raise ValueError(f"--force is not supported under torchrun: delete {runs.run_dir(cfg)} first, then "
                         "start torchrun again")
    if args.force and main_rank and runs.delete(cfg):
        print(f"--force: deleted {runs.run_dir(cfg)}; training it again", flush=True)
    elif runs.read_metrics(runs.run_dir(cfg)) is not None and main_rank:
        print(f"reusing finished run {runs.run_dir(cfg)} (--force retrains it)", flush=True)
    out = train_run(cfg)
    if not main_rank:  # under torchrun only rank 0 evaluates and reports
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
    p.add_argument("--workers", type=int, default=1, help="processes for the CRF")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
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
    if args.seeds is not None:
        params["seeds"] = args.seeds
    if args.dataset:
        _check_dataset_path(args.dataset)
        params["dataset"] = args.dataset
    if args.scratch:
        params["pretrained"] = False
    if args.no_photos:
        params["photos"] = False
    if args.grabcut_start:
        params["grabcut_start"] = True
    index = build_reports(args.only, params, from_root(args.out), args.kernel)
    print(f"wrote {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boxsup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    # help lists each flag's default; no prefix matching: "--epoch 3" must not silently mean --epochs
    shown = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter, "allow_abbrev": False}
    data_root_help = "root of the datasets (default: $BOXSUP_DATA, else the project's data/)"

    p = sub.add_parser("data", help="generate the embedded benchmark and print its statistics", allow_abbrev=False)
    p.add_argument("--data-root", default=None, help=data_root_help)
    p.add_argument("--toy-version", type=int, default=None, choices=VERSIONS,
                   help=f"generate this benchmark version and pin the data root to it (default: {VERSION}, "
                        "following the code); e.g. --toy-version 7 --data-root data-v7 reproduces v7")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("pretrain", help="pre-train the toy network's body on the toy ImageNet (cached)", **shown)
    p.add_argument("--data-root", default=None, help=data_root_help)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("proposals", help="pre-compute candidate segments for a dataset split", **shown)
    _add_proposals_args(p)
    p.set_defaults(func=_cmd_proposals)

    p = sub.add_parser("train", help="train (or resume, or reuse) one run; every Config field is a flag",
                       allow_abbrev=False)
    _add_config_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run folder (scales, flip, dense CRF, VOC submission)", **shown)
    _add_evaluate_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("report", help="execute the notebooks and render reports/ (make reports)", **shown)
    p.add_argument("--profile", default="toy", choices=PROFILES, help="Config profile the notebooks run at")
    p.add_argument("--data-root", default=None, help=data_root_help)
    p.add_argument("--only", nargs="+", default=None, help="notebook names, e.g. table1 fig4 (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="training seeds per table row (default: the "
                   "notebooks' own, 3; 1 is a quick look without error bars)")
    p.add_argument("--dataset", default=None, help="a VOC-layout folder (relative: to the project root) the "
                   "notebooks train on instead of the profile's data; pages are named <notebook>-<folder>")
    p.add_argument("--scratch", action="store_true", help="the networks start from random weights instead of "
                   "the profile's pre-trained body; pages are named <notebook>[-<folder>]-scratch")
    p.add_argument("--no-photos", action="store_true", help="draw no image or mask of the data (photos=False), "
                   "for pages committed to git whose photos may not be copied there")
    p.add_argument("--grabcut-start", action="store_true", help="Table 2 also trains BoxSup from each seed's "
                   "GrabCut network (grabcut_start=True; make reports-real sets it)")
    p.add_argument("--out", default="reports", help="output folder; relative: to the project root")
    p.add_argument("--kernel", default="boxsup", help="Jupyter kernel the notebooks run in")
    p.set_defaults(func=_cmd_report)

    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a mistyped flag: the subcommand's usage, not the top level's
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:  # bad parameters or data (DataError is a ValueError)
        print(f"boxsup {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
