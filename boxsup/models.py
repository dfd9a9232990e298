"""Networks behind one interface: ``model(x)`` takes an ImageNet-normalised N x 3 x H x W batch and
returns class logits N x C x H x W at the input resolution; ``model.classifier`` is the last 1x1
layer (learning rate x10 as in DeepLab, replaced for fine-tuning on a new label set).

- ``deeplab-largefov``: the paper's network, DeepLab-LargeFOV on VGG-16 (output stride 8).
- ``toyfcn``: a small dilated FCN for the embedded benchmark; trains in minutes on two CPU cores.
- ``deeplabv3-resnet101``: a modern torchvision backbone behind the same interface (optional).

Building a model only loads weights, never trains: the toy body's pre-training on the toy ImageNet
is its own step (``pretrain.py``, ``boxsup pretrain``) that writes ``toy_pretrained_path()``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet101_Weights, VGG16_Weights, vgg16
from torchvision.models.segmentation import deeplabv3_resnet101 as tv_deeplabv3_resnet101

from .config import ARCHS, TOY_BODY_RECIPE
from .data.synthetic import default_data_root, toy_version

WEIGHTS_HELP = ("Place the torchvision file ({}) in $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/"
                "checkpoints), or train from random weights with pretrained=False (--no-pretrained).")


class Segmenter(nn.Module):
    """features -> classifier -> bilinear upsampling to the input size."""

    def __init__(self, features: nn.Module, classifier: nn.Conv2d, output_stride: int):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.output_stride = output_stride  # inference pads inputs to a multiple of it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.classifier(self.features(x))
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def toy_fcn(num_classes: int, width: int = 32) -> Segmenter:
    """Output stride 4, receptive field ~100 px (dilations 2-4-8) so it sees whole toy objects."""
    w = width
    features = nn.Sequential(
        *_cbr(3, w), *_cbr(w, w, stride=2),
        *_cbr(w, 2 * w), *_cbr(2 * w, 2 * w, stride=2),
        *_cbr(2 * w, 3 * w), *_cbr(3 * w, 3 * w, dilation=2), *_cbr(3 * w, 3 * w, dilation=4),
        *_cbr(3 * w, 3 * w, dilation=8), nn.Dropout2d(0.1),
    )
    return Segmenter(features, nn.Conv2d(3 * w, num_classes, 1), output_stride=4)


def _imagenet(build: Callable[[], nn.Module], weights) -> nn.Module:
    """``build()`` a torchvision network with ``weights``; when they cannot be had, stop and say where
    to put them (a run that asked for them never silently starts from random weights)."""
    try:
        return build()
    except Exception as e:  # no network and no cached file
        name = Path(weights.url).name
        raise FileNotFoundError(f"ImageNet weights {name} could not be loaded ({type(e).__name__}: "
                                f"{str(e).splitlines()[0][:160]}). " + WEIGHTS_HELP.format(name)) from e


def deeplab_largefov(num_classes: int, pretrained: bool = True) -> Segmenter:
    """VGG-16 convs; pool4/pool5 3x3 stride 1; conv5 dilation 2; fc6 3x3 dilation 12 (1024);
    fc7 1x1 (1024); dropout 0.5; 1x1 classifier. Output stride 8."""
    w = VGG16_Weights.IMAGENET1K_V1
    vgg = _imagenet(lambda: vgg16(weights=w), w) if pretrained else vgg16(weights=None)
    layers: list[nn.Module] = []
    n_pool = 0
    for m in vgg.features:
        if isinstance(m, nn.MaxPool2d):
            n_pool += 1
            # DeepLab: 3x3 pools with padding 1; the last two keep the resolution
            layers.append(nn.MaxPool2d(3, stride=2 if n_pool <= 3 else 1, padding=1))
            continue
        if isinstance(m, nn.Conv2d) and n_pool == 4:
            m.dilation, m.padding = (2, 2), (2, 2)
        layers.append(m)
    fc6 = nn.Conv2d(512, 1024, 3, padding=12, dilation=12)
    fc7 = nn.Conv2d(1024, 1024, 1)
    features = nn.Sequential(*layers, fc6, nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                             fc7, nn.ReLU(inplace=True), nn.Dropout2d(0.5))
    classifier = nn.Conv2d(1024, num_classes, 1)
    nn.init.normal_(classifier.weight, std=0.01)
    nn.init.zeros_(classifier.bias)
    return Segmenter(features, classifier, output_stride=8)


class _TVWrapper(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.output_stride = 8

    @property
    def classifier(self) -> nn.Conv2d:
        return self.net.classifier[-1]

    @classifier.setter
    def classifier(self, layer: nn.Conv2d) -> None:
        self.net.classifier[-1] = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def deeplabv3_resnet101(num_classes: int, pretrained: bool = True) -> nn.Module:
    kwargs = dict(weights=None, num_classes=num_classes, aux_loss=False)
    if pretrained:
        w = ResNet101_Weights.IMAGENET1K_V1
        net = _imagenet(lambda: tv_deeplabv3_resnet101(weights_backbone=w, **kwargs), w)
    else:
        net = tv_deeplabv3_resnet101(weights_backbone=None, **kwargs)
    return _TVWrapper(net)


def toy_pretrained_path(data_root: str | os.PathLike | None = None) -> Path:
    """Where ``boxsup pretrain`` keeps the toy body pre-trained on the toy ImageNet (per benchmark
    version and pre-training recipe)."""
    name = f"toyfcn-toyimagenet-v{toy_version(data_root)}-recipe{TOY_BODY_RECIPE}.pth"
    return default_data_root(data_root) / "pretrained" / name


def load_toy_pretrained(model: Segmenter, data_root: str | os.PathLike | None = None) -> dict:
    """Load the pre-trained toy body into ``model.features``; returns the file's record (held-out
    accuracy, images, epochs, seed)."""
    path = toy_pretrained_path(data_root)
    if not path.is_file():
        raise FileNotFoundError(f"the toy network's pre-trained body {path} does not exist; create it with "
                                "`boxsup pretrain` (or `make pretrain`), or train from random weights with "
                                "pretrained=False")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.features.load_state_dict(state["features"])
    return {k: v for k, v in state.items() if k != "features"}


def describe_start(arch: str, pretrained: bool, data_root: str | os.PathLike | None = None) -> dict:
    """What a run's network starts from, as recorded with the run (never a silent substitute:
    ``build_model`` stops when pre-trained weights cannot be loaded)."""
    if not pretrained:
        return {"weights": "random"}
    if arch == "toyfcn":
        state = torch.load(toy_pretrained_path(data_root), map_location="cpu", weights_only=True)
        return {"weights": "toy ImageNet body", "file": str(toy_pretrained_path(data_root)),
                **{k: v for k, v in state.items() if k != "features"}}
    weights = VGG16_Weights.IMAGENET1K_V1 if arch == "deeplab-largefov" else ResNet101_Weights.IMAGENET1K_V1
    return {"weights": "ImageNet (torchvision)", "file": Path(weights.url).name}


def build_model(arch: str, num_classes: int, pretrained: bool = False,
                data_root: str | os.PathLike | None = None) -> nn.Module:
    """``pretrained``: VGG-16 / ResNet-101 ImageNet weights, or for ``toyfcn`` its body pre-trained
    on the toy ImageNet (``toy_pretrained_path(data_root)``, written by ``boxsup pretrain``)."""
    if arch == "toyfcn":
        model = toy_fcn(num_classes)
        if pretrained:
            load_toy_pretrained(model, data_root)
        return model
    if arch == "deeplab-largefov":
        return deeplab_largefov(num_classes, pretrained)
    if arch == "deeplabv3-resnet101":
        return deeplabv3_resnet101(num_classes, pretrained)
    raise ValueError(f"arch={arch!r}; allowed: {', '.join(ARCHS)}")


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """A fresh 1x1 classifier for a new label set (Table 5: 81-way COCO -> 60-way Context)."""
    old = model.classifier
    new = nn.Conv2d(old.in_channels, num_classes, 1)
    nn.init.normal_(new.weight, std=0.01)
    nn.init.zeros_(new.bias)
    model.classifier = new.to(old.weight.device)
    return model


def param_groups(model: nn.Module, lr: float, weight_decay: float, head_lr_mult: float = 10.0) -> list[dict]:
    """DeepLab's schedule: the classifier learns ``head_lr_mult`` (10) x faster than the pre-trained body."""
    head = {id(p) for p in model.classifier.parameters()}
    body = [p for p in model.parameters() if id(p) not in head and p.requires_grad]
    return [{"params": body, "lr": lr, "weight_decay": weight_decay, "lr_mult": 1.0},
            {"params": list(model.classifier.parameters()), "lr": lr * head_lr_mult, "weight_decay": weight_decay,
             "lr_mult": head_lr_mult}]
