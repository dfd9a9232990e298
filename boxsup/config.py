"""One dataclass per run. Its fields are the notebook parameters; ``Config(**params)`` validates
every field before any compute and fills ``None`` fields from the profile's defaults.

Profiles: ``toy`` (the embedded synthetic benchmark, CPU, minutes) and ``paper`` (PASCAL VOC 2012 +
SBD, COCO, VGG-16 DeepLab-LargeFOV, the paper's schedule: batch 20, lr 1e-3 / 10 every 15 epochs,
45 epochs). Both go through the same code; only these defaults differ.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .data import DATASET_NAMES
from .data.paths import from_root
from .data.synthetic import toy_spec_changes, toy_version
from .proposals.generators import BOX_METHODS, PROPOSAL_METHODS

# Every vocabulary of a run, defined once (the modules that act on them import them from here).
PROFILES = ("toy", "paper")
SUPERVISIONS = ("mask", "box", "semi") + BOX_METHODS  # box methods: Table 2's fixed baselines
EXTRAS = ("none", "boxes", "masks")
PROPOSALS = PROPOSAL_METHODS
ARCHS = ("toyfcn", "deeplab-largefov", "deeplabv3-resnet101")
ER_NORMS = ("image", "box")  # what Er is divided by: the image area, or the box area (relabel.py)
PRECISIONS = ("auto", "fp32", "bf16")  # of training and relabel convolutions; auto: bf16 on CUDA only

# Profile defaults for fields left at None. Both start from a pre-trained body with DeepLab's 10x
# classifier learning rate. An epoch is one relabel followed by ``passes`` passes over the data: one
# in the paper (529 iterations), three on the toy benchmark, whose 25 iterations a pass are too few
# for the network to change between relabels as it does in a paper epoch. The toy schedule keeps the
# paper's shape: lr / 10 twice, three phases. The toy trains and relabels in bf16 autocast: 1.5-1.8x
# faster per run on a CPU with AVX512-BF16, final mIoU within seed noise of fp32 (README, "Speed").
DEFAULTS = {
    "toy": dict(dataset="toy", extra_dataset="toy:extra", arch="toyfcn", pretrained=True, epochs=15,
                passes=3, lr_step=6, lr=0.01, head_lr_mult=10.0, batch_size=16, crop=64, proposals="mcg-ours",
                eval_split="val", semi_masks=0.15, precision="bf16"),
    "paper": dict(dataset="voc2012-aug", extra_dataset="coco:train2014", arch="deeplab-largefov",
                  pretrained=True, epochs=45, lr_step=15, lr=1e-3, head_lr_mult=10.0, batch_size=20, crop=321,
                  passes=1, proposals="mcg", eval_split="val", semi_masks=1464, precision="auto"),
}

# The toy body's pre-training recipe (pretrain.py), in its file name and in the key of every run that
# starts from it: a changed recipe is another body, so it never reuses a run of the old one.
# 2: lr 0.02 (recipe 1's 0.05 left the body at chance for one pre-training seed in three).
TOY_BODY_RECIPE = 2

# Fields that do not change what a run learns: excluded from the run's identity (its hash). The
# number of loader workers is one of them: runs are bit-identical for any worker count on the CPU.
NOT_IN_KEY = {"device", "runs_dir", "data_root", "use_crf", "name", "proposals_dir", "snapshot_ids",
              "eval_scales", "workers"}

# Fields that say where files live: a relative value is read against the project root (data.paths),
# so a notebook kernel whose working folder is notebooks/ finds the same data and run cache.
PATH_FIELDS = ("data_root", "runs_dir", "proposals_dir")

# One line per field: ``boxsup train --help`` and the README's parameter tables read these.
FIELD_HELP = {
    "profile": "defaults for the fields left unset: toy (embedded benchmark, CPU) or paper (VOC, VGG-16, GPU)",
    "supervision": "where training labels come from: true masks, BoxSup on boxes, semi (some masks + boxes), "
                   "or masks made once from the boxes (rect, grabcut, crfbox)",
    "extra": "add the extra set (COCO at paper scale) with boxes (BoxSup) or with masks",
    "k": "BoxSup samples among the k lowest-cost candidates per box (1: arg-min, 'w/o sampling')",
    "lam": "weight of the regression term Er in the candidate cost Eo + lam * Er",
    "er_norm": "what Er is divided by: the image area or the box area",
    "dedup_iou": "drop candidates whose mask IoU with a better-ranked kept one exceeds this before relabeling "
                 "(e.g. 0.9; unset: the pool as stored)",
    "proposals": "candidate segment method BoxSup picks from",
    "dataset": "training / evaluation dataset: a name (toy, voc2012-aug, coco, ...) or a VOC-layout folder "
               "(relative: to the project)",
    "train_split": "training split name or a .txt list of image ids",
    "eval_split": "split the finished network is scored on",
    "extra_dataset": "the extra set as dataset:split (e.g. coco:train2014)",
    "semi_masks": "supervision=semi: fraction (< 1) or count (>= 1) of training images that keep their masks",
    "arch": "network architecture",
    "pretrained": "start from the pre-trained body (toy ImageNet / VGG-16 ImageNet weights)",
    "init_from": "a finished run folder whose weights start this run (new classifier)",
    "epochs": "relabel + train rounds (the paper's epochs)",
    "passes": "passes over the training data per round (paper: 1)",
    "lr": "base learning rate (SGD)",
    "lr_step": "divide the learning rate by 10 every this many epochs",
    "batch_size": "images per SGD step of each process (per GPU under torchrun)",
    "crop": "side of the square training crops, pixels",
    "head_lr_mult": "learning-rate multiplier of the classifier (10 with a pre-trained body, as DeepLab)",
    "momentum": "SGD momentum",
    "weight_decay": "SGD weight decay",
    "seed": "random seed (toy runs on the CPU reproduce bit for bit)",
    "device": "auto (cuda when present, else cpu), cpu, cuda or cuda:N",
    "use_crf": "score with the dense CRF (what the paper reports) in the notebooks",
    "eval_scales": "test scales whose score maps are averaged (BoxSup+: 0.8 1 1.2)",
    "data_root": "root of the datasets (default: $BOXSUP_DATA, else <project>/data); relative: to the project",
    "runs_dir": "folder of the run cache; relative: to the project root",
    "proposals_dir": "candidate cache (default <data_root>/proposals); relative: to the project root",
    "workers": "data loader processes (0: in the main process; the weights do not depend on it)",
    "precision": "training and relabel arithmetic: auto (bf16 on CUDA, fp32 on the CPU), fp32, or bf16 "
                 "(bf16 autocast; the toy's default: faster on CPUs with AVX512-BF16 or AMX; on an older CPU "
                 "fp32 may be faster, with results within seed noise: README, Speed)",
    "name": "run folder prefix (default: made from the config; the hash after it identifies the run)",
    "snapshot_ids": "training images whose estimated masks are saved at every relabel (Figure 3)",
}


def check_choice(name: str, value, allowed: Sequence) -> None:
    """The one check of a choice parameter: the error names the field, the value and the choices."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


@dataclass
class Config:
    profile: str = "toy"
    supervision: str = "mask"   # mask | box (BoxSup) | semi | rect | grabcut | crfbox (fixed masks)
    extra: str = "none"         # none | boxes | masks: add the extra set (COCO at paper scale)
    k: int = 5                  # sample among the k lowest costs (k = 1: arg-min, "w/o sampling")
    lam: float = 3.0            # weight of the regression term Er
    er_norm: str = "image"      # Er normalised by the image area (paper's per-pixel loss) or "box"
    dedup_iou: float | None = None  # near-duplicate suppression of the pool (proposals.dedup); None: off
    proposals: str | None = None
    dataset: str | None = None
    train_split: str = "train"
    eval_split: str | None = None
    extra_dataset: str | None = None
    semi_masks: float | None = None  # fraction (< 1) or count (>= 1) of train images keeping masks
    arch: str | None = None
    pretrained: bool | None = None
    init_from: str | None = None     # a finished run dir: start from its weights (new classifier)
    epochs: int | None = None       # relabel/train rounds (the paper's epochs)
    passes: int | None = None       # passes over the training data per round (paper: 1)
    lr: float | None = None
    lr_step: int | None = None
    batch_size: int | None = None
    crop: int | None = None
    head_lr_mult: float | None = None  # classifier lr multiplier: 10 (DeepLab, pre-trained body) or 1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "auto"
    use_crf: bool = False
    eval_scales: tuple[float, ...] = (1.0,)
    data_root: str | None = None
    runs_dir: str = "runs"
    proposals_dir: str | None = None
    workers: int = 0
    precision: str | None = None   # toy: bf16 (results within seed noise of fp32, README); paper: auto
    name: str | None = None
    snapshot_ids: tuple[int, ...] = (0, 1, 2, 3)  # train images whose estimated masks are kept (Fig. 3)

    def __post_init__(self) -> None:
        check_choice("profile", self.profile, PROFILES)
        for k, v in DEFAULTS[self.profile].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        check_choice("supervision", self.supervision, SUPERVISIONS)
        check_choice("extra", self.extra, EXTRAS)
        check_choice("proposals", self.proposals, PROPOSALS)
        check_choice("arch", self.arch, ARCHS)
        check_choice("er_norm", self.er_norm, ER_NORMS)
        check_choice("precision", self.precision, PRECISIONS)
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device={self.device!r} is not allowed; choose 'auto', 'cpu' or 'cuda[:N]'")
        for name in ("k", "epochs", "passes", "lr_step", "batch_size", "crop"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r} is not allowed; it must be a positive integer")
        for name in ("lam", "lr", "momentum", "weight_decay", "head_lr_mult"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name}={v!r} is not allowed; it must be a non-negative number")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is not allowed; it must be positive")
        if self.dedup_iou is not None and not (isinstance(self.dedup_iou, (int, float)) and 0 < self.dedup_iou <= 1):
            raise ValueError(f"dedup_iou={self.dedup_iou!r} is not allowed; give an IoU in (0, 1] or leave it unset")
        if self.semi_masks is None or self.semi_masks <= 0:
            raise ValueError(f"semi_masks={self.semi_masks!r}; give a fraction in (0, 1) or a count >= 1")
        self.eval_scales = tuple(float(s) for s in self.eval_scales)
        if not self.eval_scales or min(self.eval_scales) <= 0:
            raise ValueError(f"eval_scales={self.eval_scales!r}; need one or more positive scales")
        self.snapshot_ids = tuple(int(i) for i in self.snapshot_ids)
        if self.workers < 0:
            raise ValueError(f"workers={self.workers!r}; it must be >= 0")
        for name in PATH_FIELDS:  # not in the run's key: resolving them changes no hash
            if getattr(self, name) is not None:
                setattr(self, name, str(from_root(getattr(self, name))))
        if self.dataset not in DATASET_NAMES:  # a VOC-layout folder, read against the project root too
            self.dataset = str(from_root(self.dataset))
        if self.name is None:
            self.name = self.default_name()

    def default_name(self) -> str:
        """Readable folder prefix (the hash after it is what identifies the run)."""
        base = DEFAULTS[self.profile]
        parts = [self.profile if self.dataset == base["dataset"] else Path(self.dataset).name]
        if self.train_split != "train":  # a split given as a file path never nests the run folder
            parts.append(Path(self.train_split).stem if "/" in self.train_split else self.train_split)
        parts.append(self.supervision)
        if self.supervision == "box":
            parts.append(f"k{self.k}")
        if self.uses_proposals and self.proposals != base["proposals"]:
            parts.append(self.proposals)
        if self.uses_proposals and self.dedup_iou is not None:
            parts.append(f"dedup{self.dedup_iou:g}")
        if self.extra != "none":
            parts.append(f"extra-{self.extra}")
        return "-".join(parts)

    @property
    def uses_proposals(self) -> bool:
        return self.supervision in ("box", "semi") or self.extra == "boxes"

    def key(self) -> str:
        """Hash of everything that changes what the run learns (not where it runs or is stored)."""
        d = {k: v for k, v in self.to_dict().items() if k not in NOT_IN_KEY}
        d["toy_version"] = toy_version(self.data_root)  # another benchmark version: other runs
        changed = toy_spec_changes(self.data_root) if self.dataset in ("toy", "toy-context") else {}
        if changed:  # a root pinned to a non-default spec (e.g. smaller images): other runs
            d["toy_spec"] = changed
        if self.arch == "toyfcn" and self.pretrained:
            d["toy_body"] = TOY_BODY_RECIPE
        if self.init_from:  # the run started from is named by its folder (name-hash), not where it lies
            d["init_from"] = Path(self.init_from).name
        if self.dataset not in DATASET_NAMES:  # a folder dataset by its name, not where it lies
            d["dataset"] = "folder:" + Path(self.dataset).name
        if d["dedup_iou"] is None:  # unset: the hash of every run from before the option
            d.pop("dedup_iou")
        if not self.uses_proposals:  # k, lam and the proposal method do not matter then
            for k in ("k", "lam", "proposals", "er_norm", "dedup_iou"):
                d.pop(k, None)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def run_name(self) -> str:
        return f"{self.name}-{self.key()}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_scales"] = list(d["eval_scales"])
        d["snapshot_ids"] = list(d["snapshot_ids"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes) -> "Config":
        d = self.to_dict()
        d.update(changes)
        if "name" not in changes:
            d["name"] = None
        return Config.from_dict(d)


