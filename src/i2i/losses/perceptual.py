"""The domain-invariant perceptual loss of MUNIT and UNIT (Huang et al. 2018, §5.1).

Mean squared error between the instance-normalised VGG16 relu5_3 features of a translation and
of its source image (`NVlabs/MUNIT:trainer.py compute_vgg_loss`): instance normalisation removes
the per-channel feature statistics, which carry the domain's style, so only content is compared.

Two forced deviations from the official code: it loads a Lua-torch VGG16 (caffe weights, BGR input
in [0, 255] minus the mean pixel) through `torch.utils.serialization`, which PyTorch removed in 1.0
(research/nvidia.md §3 #6). Here the torchvision VGG16 ImageNet weights are used, with the input
normalisation they were trained with (RGB in [0, 1], ImageNet mean and std). The official topology
is kept: conv1_1 to relu5_3 with no max-pooling after relu4_3 (the official `Vgg16.forward` skips
it), so relu5_3 is at 1/8 of the input size.

The weights are torchvision's `vgg16-397923af.pth` from the torch hub cache
(`<torch.hub.get_dir()>/checkpoints/`) or the file `loss.vgg_weights_path` names; nothing is
downloaded. The file's SHA-256 is checked against the published one before it is read (with
`weights_only=True`); weights of your own need `loss.allow_unpublished_weights=true`. The network
is frozen and is not part of the model's state (it never enters a checkpoint); it is loaded at the
first call, so a model rebuilt for translation does not need it.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.weights import PUBLISHED_SHA256, VGG16_FILE, check_published, hub_checkpoints

# torchvision's `vgg16().features` up to relu5_3, layer by layer so its state-dict keys (the layer
# indices) match; "M" is a 2x2 max-pooling, "skip" the pooling the official network leaves out.
VGG16_RELU5_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "skip", 512, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_relu5_3() -> nn.Sequential:
    """VGG16's convolutional layers from conv1_1 to relu5_3 with the official topology."""
    layers: list[nn.Module] = []
    channels = 3
    for entry in VGG16_RELU5_3:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif entry == "skip":
            layers.append(nn.Identity())
        else:
            layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=True)]
            channels = entry
    return nn.Sequential(*layers)


def vgg16_weights_file(weights_path: str | None) -> Path:
    """The VGG16 weights to use: `weights_path` if given, else torchvision's file in the hub cache."""
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                "loss.vgg_weights_path", weights_path, f"no such file (torchvision's {VGG16_FILE})"
            )
        return path
    cached = hub_checkpoints() / VGG16_FILE
    if not cached.is_file():
        raise ConfigError(
            "loss.vgg_weights_path",
            None,
            f"the perceptual loss (vgg_w > 0) needs VGG16 weights and none were found offline: place "
            f"torchvision's {VGG16_FILE} in {cached.parent} or set loss.vgg_weights_path=<file>",
        )
    return cached


def load_vgg16_relu5_3(weights_path: str | None, allow_unpublished: bool) -> nn.Sequential:
    """The frozen VGG16 feature extractor: the file's digest checked first (any digest with
    `allow_unpublished`), then loaded with `weights_only=True`."""
    path = vgg16_weights_file(weights_path)
    check_published(path, PUBLISHED_SHA256[VGG16_FILE], allow_unpublished, "loss.allow_unpublished_weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        why = f"not a readable PyTorch file ({type(error).__name__})"
        raise ConfigError("loss.vgg_weights_path", str(path), why) from error
    network = vgg16_relu5_3()
    wanted = set(network.state_dict())
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    features = {k: v for k, v in features.items() if k in wanted}
    shapes = {k: v.shape for k, v in network.state_dict().items()}
    if set(features) != wanted or any(features[k].shape != shapes[k] for k in wanted):
        raise ConfigError(
            "loss.vgg_weights_path", str(path), "not a torchvision VGG16 state dict (features.* keys)"
        )
    network.load_state_dict(features)
    return network.eval().requires_grad_(False)


class DomainInvariantPerceptualLoss:
    """`loss(image, source)`: MSE of IN(VGG16 relu5_3) of a translation and of its source image.

    Images are in [-1, 1]. The source's features need no gradient and are computed without one.
    """

    def __init__(self, weights_path: str | None, allow_unpublished: bool) -> None:
        self.weights_path = weights_path
        self.allow_unpublished = allow_unpublished
        self._features: nn.Sequential | None = None

    def load(self) -> None:
        """Load the VGG if it is not loaded yet."""
        if self._features is None:
            self._features = load_vgg16_relu5_3(self.weights_path, self.allow_unpublished)

    def _vgg(self, images: Tensor) -> Tensor:
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return self._features(((images + 1) / 2 - mean) / std)

    def __call__(self, image: Tensor, source: Tensor) -> Tensor:
        self.load()
        self._features.to(image.device)
        with torch.no_grad():
            target = F.instance_norm(self._vgg(source))
        return F.mse_loss(F.instance_norm(self._vgg(image)), target)
