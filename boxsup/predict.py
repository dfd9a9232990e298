"""Whole-image inference: any image size, optional test-time scales (BoxSup+) and flip.

Each image is fed at full resolution (no sliding window). Inputs are zero-padded (the mean colour
after normalisation) at the bottom/right to a multiple of the network's output stride and the
output is cropped back to the top-left H x W, so a label never moves by a pixel. For several
scales the softmax probabilities of each scale are resized bilinearly to the image size and
averaged (BoxSup+ uses 0.8, 1.0, 1.2); a flipped copy is averaged in the same way.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .atomic import save_npz
from .data.transforms import normalise_batch

DEFAULT_STRIDE = 8  # DeepLab-LargeFOV and DeepLabv3 are stride 8; toyfcn's 4 divides it


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r}; allowed: 'auto', 'cpu', 'cuda', 'cuda:N'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"scales={scales}; need one or more positive numbers, e.g. (1.0,) or (0.8, 1.0, 1.2)")
    return scales


@contextlib.contextmanager
def inference_mode(model: nn.Module, device: torch.device):
    """Eval mode on ``device``, channels_last (the faster convolution layout on CPUs and GPUs alike);
    the previous train/eval mode is restored."""
    was_training = model.training
    p = next(model.parameters(), None)
    if p is not None and p.device != device:
        model.to(device)
    model.to(memory_format=torch.channels_last)
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def _stride(model: nn.Module, pad_to: int | None) -> int:
    s = pad_to if pad_to is not None else getattr(model, "output_stride", DEFAULT_STRIDE)
    if int(s) < 1:
        raise ValueError(f"pad_to={s}; must be a positive integer (1 disables padding)")
    return int(s)



def _forward(model: nn.Module, x: torch.Tensor, stride: int, device: torch.device) -> torch.Tensor:
    """Softmax probabilities (float32, N x C x h x w) of a normalised batch at its own size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))  # bottom/right only: cropping [:h, :w] restores alignment
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(x)
    if logits.shape[-2:] != x.shape[-2:]:
        raise RuntimeError(f"model returned {tuple(logits.shape)} for a {tuple(x.shape)} input; the "
                           "contract is logits at the input size (N x C x H x W)")
    return torch.softmax(logits[..., :h, :w].float(), dim=1)


def predict_batch(model: nn.Module, images: Sequence[np.ndarray], scales: Sequence[float] = (1.0,),
                  flip: bool = False, device: str | torch.device = "auto",
                  pad_to: int | None = None) -> np.ndarray:
    """Probabilities (N, C, H, W) float32 for same-size HxWx3 uint8 images."""
    scales = check_scales(scales)
    if not len(images):
        raise ValueError("predict_batch needs at least one image")
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"images must be HxWx3 and all the same size, got shapes {sorted(shapes)}")
    dev = resolve_device(device)
    stride = _stride(model, pad_to)
    h, w = images[0].shape[:2]
    with inference_mode(model, dev):
        x = normalise_batch(np.stack(images), dev)
        if flip:  # flipped copies ride in the same batch
            x = torch.cat([x, x.flip(-1)])
        acc = None
        for s in scales:
            xs = x
            if s != 1.0:
                size = (max(1, round(h * s)), max(1, round(w * s)))
                xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            p = _forward(model, xs, stride, dev)
            if s != 1.0:
                p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            acc = p if acc is None else acc + p
        n = len(images)
        if flip:
            acc = acc[:n] + acc[n:].flip(-1)
        acc = acc / (len(scales) * (2 if flip else 1))
    return acc.cpu().numpy().astype(np.float32, copy=False)


def predict_probs(model: nn.Module, image: np.ndarray, scales: Sequence[float] = (1.0,), flip: bool = False,
                  device: str | torch.device = "cpu", pad_to: int | None = None) -> np.ndarray:
    """Softmax probabilities (C, H, W) float32 of one HxWx3 uint8 image."""
    return predict_batch(model, [image], scales, flip, device, pad_to)[0]


def save_probs(save_dir: str | os.PathLike, image_id: str, probs: np.ndarray) -> Path:
    """``<save_dir>/<image_id>.npz`` (float16, key ``probs``), written atomically."""
    path = Path(save_dir) / f"{image_id}.npz"
    save_npz(path, probs=probs.astype(np.float16))
    return path


def predict_dataset(model: nn.Module, dataset, *, scales: Sequence[float] = (1.0,), flip: bool = False,
                    device: str | torch.device = "auto", batch_size: int = 8, max_images: int | None = None,
                    save_dir: str | os.PathLike | None = None, pad_to: int | None = None,
                    progress: bool = True) -> Iterator[tuple]:
    """Yield ``(sample, probs)`` for a sequence of Samples, streaming.

    Same-size images are batched together (up to ``batch_size``); a bounded look-ahead buffer
    groups sizes, so the yield order can differ from the dataset order. Probabilities are written
    to ``save_dir`` only when one is given.
    """
    scales = check_scales(scales)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; must be >= 1")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images={max_images}; must be >= 1 or None")
    dev = resolve_device(device)
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    buckets: dict[tuple, list] = {}
    buffered = 0
    max_buffer = 4 * batch_size  # bounds memory when every image has its own size (VOC)

    def flush(key):
        nonlocal buffered
        samples = buckets.pop(key)
        buffered -= len(samples)
        probs = predict_batch(model, [s.image for s in samples], scales, flip, dev, pad_to)
        for s, p in zip(samples, probs):
            if save_dir is not None:
                save_probs(save_dir, s.image_id, p)
            yield s, p

    bar = tqdm(total=n, desc="predict", disable=not progress, leave=False)
    try:
        for i in range(n):
            s = dataset[i]
            key = s.image.shape
            buckets.setdefault(key, []).append(s)
            buffered += 1
            if len(buckets[key]) >= batch_size:
                yield from flush(key)
                bar.update(batch_size)
            elif buffered >= max_buffer:
                big = max(buckets, key=lambda k: len(buckets[k]))
                m = len(buckets[big])
                yield from flush(big)
                bar.update(m)
        for key in list(buckets):
            m = len(buckets[key])
            yield from flush(key)
            bar.update(m)
    finally:
        bar.close()
