"""``boxsup proposals``: pre-compute candidate segments of a dataset split into the proposal store.

    boxsup proposals --dataset toy --split train --method mcg-ours [--workers N] [--shard 0/4]
                     [--data-root D] [--out DIR] [--param key=value ...] [--limit N] [--quality]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .generators import METHODS


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected key=value")
    key, val = text.split("=", 1)
    try:
        return key, json.loads(val)  # numbers, lists, true/false
    except json.JSONDecodeError:
        return key, val


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="toy", help="dataset name (toy, voc2012-aug, coco, ...) or a "
                        "VOC-layout folder")
    parser.add_argument("--split", default="train", help="split name, a .txt list, or 'all' (every image "
                        "of a VOC-layout folder)")
    parser.add_argument("--method", default="mcg-ours", choices=METHODS)
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--shard", default="0/1", help="i/n: this process takes images i, i+n, ... (default 0/1)")
    parser.add_argument("--data-root", default=None, help="root of the datasets (default: the project's data/)")
    parser.add_argument("--out", default=None, help="proposal cache folder (default <data-root>/proposals)")
    parser.add_argument("--param", action="append", type=_parse_param, default=[], metavar="KEY=VALUE",
                        help="generator parameter, repeatable (e.g. max_candidates=2000, mcg_dir=/data/MCG)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of the shard")
    parser.add_argument("--quality", action="store_true", help="afterwards print ABO / recall of the stored "
                        "candidates against the instance masks (images that have masks)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..data import default_data_root, load_dataset
    from .store import ProposalStore, cache_root, parse_shard, precompute, store_dir

    shard = parse_shard(args.shard)
    params = dict(args.param)
    split = None if args.split == "all" else args.split
    root = default_data_root(args.data_root)
    if Path(args.dataset).is_dir():
        from ..data import VOCLayout

        dataset = VOCLayout(args.dataset, split, masks="optional")
    else:
        dataset = load_dataset(args.dataset, split, args.data_root)
    if args.method == "mcg" and "mcg_dir" not in params:
        import os

        params["mcg_dir"] = os.environ.get("BOXSUP_MCG_DIR") or str(root / "MCG")
    key = {k: v for k, v in params.items() if k != "mcg_dir"}
    store = ProposalStore(store_dir(cache_root(root, args.out), args.dataset, split, args.method, key))
    res = precompute(dataset, store, args.method, params, workers=args.workers, shard=shard,
                     progress=not args.no_progress, limit=args.limit)
    print(f"{store.root}: {res['computed']} computed, {res['skipped']} already there, {res['redone']} redone "
          f"(damaged files), {res['total']} in shard {shard[0]}/{shard[1]}")
    if args.quality:
        print(json.dumps(store_quality(dataset, store, shard, args.limit), indent=1))
    return 0


def store_quality(dataset, store, shard=(0, 1), limit: int | None = None) -> dict:
    """ABO, recall@0.5/0.7 and candidates per image of stored candidates vs true instance masks."""
    from .quality import best_overlaps, ignore_region, instance_masks, summarize
    from .store import dataset_ids

    best, counts = [], []
    ids = dataset_ids(dataset)
    for pos in list(range(shard[0], len(dataset), shard[1]))[:limit]:
        s = dataset[pos]
        if s.mask is None and s.instances is None:
            continue
        c = store.load(ids[pos])
        best.append(best_overlaps(c.rles, instance_masks(s), ignore_region(s)))
        counts.append(len(c))
    return summarize(best, counts)
