"""The toy network's ImageNet: image-level pre-training of the toy body on the embedded benchmark.

DeepLab starts from VGG-16 pre-trained on ImageNet, and BoxSup leans on that start: the first relabel
is made with it. From random weights the toy network makes BoxSup collapse (the README gives the
measurements), so the benchmark ships its own ImageNet, ``toy_imagenet/train/<class>/*.jpg`` (one
object per image, class labels only), and ``pretrain_toyfcn`` trains the toy body on it as a
classifier (global average pooling + a linear layer) once per benchmark version. It writes
``models.toy_pretrained_path()``, which ``build_model("toyfcn", n, pretrained=True)`` loads, as
torchvision loads VGG-16's weights. Run it with ``boxsup pretrain`` or ``make pretrain``; training a
run that needs it calls it first.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .atomic import locked, save_torch
from .config import TOY_BODY_RECIPE
from .data.sample import DataError, read_image
from .data.synthetic import THINGS, ensure_toy, toy_version
from .data.transforms import normalise_batch
from .models import toy_fcn, toy_pretrained_path

# Recipe 2 (config.TOY_BODY_RECIPE; bump it with any change here). At lr 0.05 (recipe 1) one
# pre-training seed in three stayed at chance (loss ln 6 for all 12 epochs); at 0.02 seeds 0-4 learn.
EPOCHS, LR, BATCH, CROP = 12, 0.02, 32, 96


def load_toy_imagenet(data_root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 images and (N,) class indices into ``THINGS``, in a fixed order."""
    root = ensure_toy(data_root) / "toy_imagenet" / "train"
    images, labels = [], []
    for c, name in enumerate(THINGS):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"toy ImageNet class folder {folder} is missing; delete {root.parent} to regenerate")
        for f in sorted(folder.glob("*.jpg")):
            images.append(read_image(f))
            labels.append(c)
    return np.stack(images), np.asarray(labels)


def train_crop(side: int) -> int:
    """The training crop: 96 px on the toy's 112-px images; on a benchmark made with smaller images
    the same fraction of the side (a multiple of 8), instead of a crop that does not fit."""
    return min(CROP, max(8, side * CROP // 112 // 8 * 8))


def _batch(images: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
    """Random crop + flip when ``rng`` is given (training), else the whole images."""
    if rng is not None:
        h, w = images.shape[1:3]
        crop = train_crop(min(h, w))
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        images = images[:, y:y + crop, x:x + crop]
        if rng.random() < 0.5:
            images = images[:, :, ::-1]
    return normalise_batch(np.ascontiguousarray(images), torch.device("cpu")).contiguous()


def pretrain_toyfcn(data_root: str | os.PathLike | None = None, seed: int = 0, progress: bool = True) -> Path:
    """Train the toy network's body unless its file exists (once per benchmark version); returns it.
    A second process asking for it meanwhile waits for the first one's file."""
    path = toy_pretrained_path(data_root)
    if not path.is_file():
        with locked(path.parent, ".lock-pretrain"):
            if not path.is_file():
                _pretrain(path, data_root, seed, progress)
    return path


def _pretrain(path: Path, data_root: str | os.PathLike | None, seed: int, progress: bool) -> None:
    images, labels = load_toy_imagenet(data_root)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    held = order[: len(order) // 10]  # a held-out tenth: the accuracy saved with the weights
    train = order[len(order) // 10:]
    torch.manual_seed(seed)
    fcn = toy_fcn(len(THINGS))
    body = fcn.features
    head = nn.Linear(fcn.classifier.in_channels, len(THINGS))
    net = nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)
    steps = EPOCHS * (len(train) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    bar = tqdm(total=steps, desc="pre-training toyfcn on toy ImageNet", disable=not progress, mininterval=2)
    for epoch in range(EPOCHS):
        net.train()
        perm = rng.permutation(train)
        for i in range(len(train) // BATCH):
            idx = np.sort(perm[i * BATCH:(i + 1) * BATCH])
            loss = F.cross_entropy(net(_batch(images[idx], rng)), torch.from_numpy(labels[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    net.eval()
    with torch.inference_mode():
        pred = torch.cat([net(_batch(images[held[i:i + 64]], None)).argmax(1) for i in range(0, len(held), 64)])
    accuracy = float((pred.numpy() == labels[held]).mean())
    save_torch(path, {"features": body.state_dict(), "heldout_accuracy": accuracy, "images": len(train),
                      "epochs": EPOCHS, "lr": LR, "seed": seed, "toy_version": toy_version(data_root),
                      "recipe": TOY_BODY_RECIPE})
