"""Image/label transforms shared by training and inference.

Images enter networks as float tensors normalised with ImageNet statistics (the VGG-16 weights
expect them). Training augmentation (random scale, crop, flip) is applied to the image and its label
map with the same parameters; labels are resampled with nearest neighbour and padded with 255 so
that padding is never learned as background.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from .sample import IGNORE

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> 3xHxW float32, ImageNet-normalised."""
    return torch.from_numpy(((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1).copy())


def normalise_batch(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float, as ``image_to_tensor``; uint8 crosses to the device
    (4x less host-to-device traffic than float32)."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
    mean = torch.as_tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.as_tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def random_scale_crop_flip(image: np.ndarray, label: np.ndarray, crop: int, rng: np.random.Generator,
                           scale_range: tuple[float, float] = (0.75, 1.25), flip: bool = True
                           ) -> tuple[np.ndarray, np.ndarray]:
    """One joint augmentation of image and label; output is crop x crop, label padded with 255."""
    s = float(rng.uniform(*scale_range))
    h, w = label.shape
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if (nh, nw) != (h, w):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    ph, pw = max(crop - nh, 0), max(crop - nw, 0)
    if ph or pw:
        # image padded with the mean colour (zero after normalisation), label with ignore
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=MEAN.round().tolist())
        label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE)
    y = int(rng.integers(0, image.shape[0] - crop + 1))
    x = int(rng.integers(0, image.shape[1] - crop + 1))
    image, label = image[y:y + crop, x:x + crop], label[y:y + crop, x:x + crop]
    if flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)
