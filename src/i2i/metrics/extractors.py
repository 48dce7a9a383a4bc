"""Feature extractors for KID/FID and the LPIPS network, loaded offline from known files.

The standard FID Inception is torch-fidelity's port of the TensorFlow FID graph (the weights every
torch-fidelity/torchmetrics FID number uses), in torchmetrics' `NoTrainInceptionV3`. LPIPS is
torchmetrics' `LearnedPerceptualImagePatchSimilarity`: an ImageNet torchvision backbone plus the
linear heads that ship inside the torchmetrics wheel. Both weight files are looked for where torch
keeps downloads (`$TORCH_HOME/hub/checkpoints`) or taken from an explicit path; with neither, a
one-line error says which file to place where. Nothing is downloaded unless
`metrics.allow_download=true`, because on a machine without network a download attempt can hang
until a TCP timeout instead of failing (research/ecosystem.md §3).

`extractor=proxy` replaces both networks with seeded untrained ones, for machines that cannot get
the files. Their numbers measure something (identical sets score ~0, different sets > 0) but are
not KID/FID/LPIPS; every score computed with them carries the `_proxy` suffix.
"""

import functools
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import I2IError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity v0.2.0 release asset
INCEPTION_FEATURES = 2048  # pool_3, the FID/KID layer
#: torchvision's ImageNet weights of each LPIPS backbone, by torchmetrics' `net_type`
LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
EXTRACTORS = ("inception", "proxy")
PROXY_SEED = 0


class MetricWeightsError(I2IError):
    """A metric network's weight file is not on this machine."""


def hub_checkpoints() -> Path:
    """Where `torch.hub` keeps downloaded weights: `$TORCH_HOME/hub/checkpoints` (~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def locate_weights(file_name: str, explicit: str | None, key: str, allow_download: bool, what: str) -> Path | None:
    """The weight file to load: `explicit` if given (it must exist), else the hub cache's copy.

    Returns None only when the file is absent and `allow_download` lets the caller fetch it; otherwise
    a missing file raises MetricWeightsError in one line naming the file and both places it may go.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise MetricWeightsError(f"{key}={explicit}: no such file (the {what} weights, {file_name})")
        return path
    cached = hub_checkpoints() / file_name
    if cached.is_file():
        return cached
    if allow_download:
        return None
    raise MetricWeightsError(
        f"the {what} weights are not on this machine: place {file_name} in {cached.parent}/ "
        f"(or pass {key}=<path>; metrics.allow_download=true fetches it on a connected machine; "
        "metrics.extractor=proxy uses untrained stand-in networks, logged as *_proxy)"
    )


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    """SHA-256 of a weight file (cached per path, size and modification time)."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime)


@dataclass(frozen=True)
class Extractor:
    """A network that maps uint8 images (B, 3, H, W) to features (B, num_features), and where its
    weights came from (recorded beside every score)."""

    network: nn.Module
    num_features: int
    name: str
    weights: Path | None
    weights_sha256: str | None

    @property
    def proxy(self) -> bool:
        return self.name == "proxy"

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        return self.network(images)


def build_extractor(kind: str, weights: str | None, allow_download: bool, antialias: bool) -> Extractor:
    """The FID/KID feature extractor `kind` ("inception" or "proxy").

    `antialias=False` resizes to 299 px with torch-fidelity's TensorFlow-1.x-compatible bilinear
    interpolation, the resize of the published TF/torch-fidelity FIDs; True is torchmetrics'
    default antialiased resize (the two differ only when images are larger than 299 px).
    """
    if kind == "proxy":
        return Extractor(ProxyFeatures(seed=PROXY_SEED), ProxyFeatures.num_features, "proxy", None, None)
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = locate_weights(INCEPTION_FILE, weights, "metrics.inception_weights", allow_download, "FID Inception")
    network = NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=[str(INCEPTION_FEATURES)],
        feature_extractor_weights_path=str(path) if path else None,  # None: torch-fidelity downloads
        antialias=antialias,
    )
    path = path or hub_checkpoints() / INCEPTION_FILE
    return Extractor(network, INCEPTION_FEATURES, "inception-v3-compat", path, sha256(path))


class ProxyFeatures(nn.Module):
    """An untrained, seeded CNN standing in for Inception when its weights cannot be had: four
    stride-2 convolutions at 64 px, global average pooled to 64 features."""

    num_features = 64

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        widths = (3, 16, 32, 64, self.num_features)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(widths, widths[1:]))
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(conv.bias)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        x = F.interpolate(images.float() / 127.5 - 1, size=(64, 64), mode="bilinear", align_corners=False)
        for conv in self.convs:
            x = F.relu(conv(x))
        return x.mean(dim=(2, 3))


@dataclass(frozen=True)
class LPIPSNetwork:
    """torchmetrics' LPIPS metric (images in [-1, 1]) and where its backbone weights came from."""

    metric: nn.Module
    name: str
    weights: Path | None
    weights_sha256: str | None

    @property
    def proxy(self) -> bool:
        return self.name.endswith("proxy")


def build_lpips(kind: str, net: str, weights: str | None, allow_download: bool) -> LPIPSNetwork:
    """torchmetrics' LPIPS with the ImageNet `net` backbone ("alex" as in MUNIT's diversity score),
    or with a seeded untrained backbone when `kind` is "proxy" (the shipped linear heads either way)."""
    from torchmetrics.image import lpip
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    if kind == "proxy":
        # torchmetrics exposes no untrained-backbone switch on the metric; its network class has one.
        untrained = functools.partial(lpip._NoTrainLpips, pnet_rand=True)
        with torch.random.fork_rng(devices=[]), mock.patch.object(lpip, "_NoTrainLpips", untrained):
            torch.manual_seed(PROXY_SEED)
            metric = LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean")
        return LPIPSNetwork(metric, f"lpips-{net}-proxy", None, None)
    file_name = LPIPS_BACKBONE_FILES[net]
    path = locate_weights(file_name, weights, "metrics.lpips_weights", allow_download, f"LPIPS {net} backbone")
    with _hub_cache_holding(path, file_name):
        metric = LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean")
    path = path or hub_checkpoints() / file_name
    return LPIPSNetwork(metric, f"lpips-{net}", path, sha256(path))


@contextmanager
def _hub_cache_holding(path: Path | None, file_name: str) -> Iterator[None]:
    """torchvision loads its backbones only through the hub cache; for a file elsewhere, point the
    cache for the duration at a temporary folder that links to it under the expected name."""
    if path is None or path == hub_checkpoints() / file_name:
        yield
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "checkpoints").mkdir()
        (Path(folder) / "checkpoints" / file_name).symlink_to(path.resolve())
        with mock.patch.object(torch.hub, "get_dir", lambda: folder):
            yield
