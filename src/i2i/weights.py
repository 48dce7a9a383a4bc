"""Pretrained weights files: where torch keeps them, and their published SHA-256 digests.

A weights file is a pickle: `torch.load` with `weights_only=False` runs whatever it names. So a
file's digest is checked against the published one before anything reads it (`check_published`),
and it is then read with `weights_only=True`. The metric networks (FID Inception, the LPIPS
backbones, `metrics/extractors.py`) and the perceptual loss's VGG16 (`losses/perceptual.py`) share
these files and this check.
"""

import functools
import hashlib
from pathlib import Path

import torch

from i2i.errors import I2IError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity v0.2.0 release asset
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
#: The published SHA-256 of each weights file. Inception: torch-fidelity's release v0.2.0 file
#: (95,628,359 bytes); the torchvision ImageNet files; each file name carries its first 8 digits.
PUBLISHED_SHA256 = {
    INCEPTION_FILE: "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    "alexnet-owt-7be5be79.pth": "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    VGG16_FILE: "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    "squeezenet1_1-b8a52dc0.pth": "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
}


class WeightsError(I2IError):
    """A weights file is missing, is not the published file, or cannot be read."""


def hub_checkpoints() -> Path:
    """Where `torch.hub` keeps downloaded weights: `$TORCH_HOME/hub/checkpoints` (~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    """SHA-256 of a weights file (cached per path, size and modification time)."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime)


def check_published(path: Path, expected: str, allow_unpublished: bool, opt_in_key: str) -> str:
    """The SHA-256 of `path`; WeightsError in one line naming the file and both digests when it is
    not `expected` and `allow_unpublished` (the config key `opt_in_key`) is off."""
    actual = sha256(path)
    if actual != expected and not allow_unpublished:
        raise WeightsError(
            f"{path}: SHA-256 {actual} is not the published {expected}; place the published file there "
            f"(or, for weights of your own, {opt_in_key}=true)"
        )
    return actual
