"""Feature extractors for KID/FID and the LPIPS network, loaded offline from known files.

The standard FID Inception is torch-fidelity's port of the TensorFlow FID graph (the weights every
torch-fidelity/torchmetrics FID number uses), in torchmetrics' `NoTrainInceptionV3`. LPIPS is
torchmetrics' `LearnedPerceptualImagePatchSimilarity`: an ImageNet torchvision backbone plus the
linear heads that ship inside the torchmetrics wheel. Both weight files are looked for where torch
keeps downloads (`$TORCH_HOME/hub/checkpoints`) or taken from an explicit path; with neither, a
one-line error says which file to place where. Nothing is downloaded unless
`metrics.allow_download=true`, because on a machine without network a download attempt can hang
until a TCP timeout instead of failing (research/ecosystem.md §3).

Every weights file is checked before anything reads it: its SHA-256 must be the published one
(`PUBLISHED_SHA256`; the LPIPS heads inside torchmetrics' wheel as well), and it is then loaded by
us with `weights_only=True` and handed to the networks, so neither torch-fidelity (which unpickles
with `weights_only=False`) nor torchvision's hub loader ever opens a file. A file of another digest
(your own weights, the random stand-ins of the tests) is used only with
`metrics.allow_unpublished_weights=true`, still as plain tensors: a pickle cannot run either way.

How images reach Inception's 299 px input is the FID protocol's other half (`metrics.protocol`):
`torch_fidelity` (the default) resizes as torch-fidelity and torchmetrics do, with TensorFlow 1.x's
bilinear resize (no half-pixel offset: source = output x in/out) and scales (x - 128) / 128, the
preprocessing of the TF FID code and of FIDs computed with torch-fidelity/torchmetrics;
`pytorch_fid` reproduces pytorch-fid (`mseitzer/pytorch-fid`, the FID of CUT, UNSB and DCLGAN's
papers): pixels / 255, torch's bilinear interpolate to 299 px with align_corners=False (half-pixel
centres), then 2x - 1. The two resizes differ at every input size except 299 px: measured mean
absolute differences of the resized pixels at 256 px are 6.96/255 on uniform noise, 0.75 and
1.49/255 on two photographs and 0.50/255 on shapes_color images (32.9/255 on noise at 64 px,
30.5/255 at 512 px). `metrics.antialias=true` (torchmetrics' antialiased resize, under
`torch_fidelity`) antialiases only when shrinking: below 299 px it is torch's plain bilinear resize
(max difference 0.0005/255 at 256 px), so it differs from the default as much as pytorch-fid's does.
Both protocols run torch-fidelity's port of the TF Inception graph (pytorch-fid's `pt_inception`
file is its own port of the same graph).

`extractor=proxy` replaces both networks with seeded untrained ones, for machines that cannot get
the files. Their numbers measure something (identical sets score ~0, different sets > 0) but are
not KID/FID/LPIPS; every score computed with them carries the `_proxy` suffix.
"""

import functools
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.weights import (
    INCEPTION_FILE,
    PUBLISHED_SHA256,
    VGG16_FILE,
    WeightsError,
    check_published,
    hub_checkpoints,
)

INCEPTION_FEATURES = 2048  # pool_3, the FID/KID layer
#: torchvision's ImageNet weights of each LPIPS backbone, by torchmetrics' `net_type`
LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": VGG16_FILE,
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
TORCHVISION_WEIGHTS_URL = "https://download.pytorch.org/models/"
#: LPIPS v0.1's linear heads (richzhang/PerceptualSimilarity `LPIPS_v0.1_<net>-<8 digits>.pth`), the
#: files torchmetrics ships as `lpips_models/<net>.pth` and loads itself.
LPIPS_HEAD_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    "squeeze": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
}
UNPUBLISHED_KEY = "metrics.allow_unpublished_weights"
EXTRACTORS = ("inception", "proxy")
#: `metrics.protocol`: the input pipeline of the FID/KID Inception, named after the code it reproduces
PROTOCOLS = ("torch_fidelity", "pytorch_fid")
INCEPTION_SIZE = 299
# torch-fidelity's Inception after its input scaling, up to the 2048-d pool_3 features
INCEPTION_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool",
)  # fmt: skip
PROXY_SEED = 0


def locate_weights(
    file_name: str, explicit: str | None, key: str, allow_download: bool, what: str
) -> Path | None:
    """The weight file to load: `explicit` if given (it must exist), else the hub cache's copy.

    Returns None only when the file is absent and `allow_download` lets the caller fetch it; otherwise
    a missing file raises WeightsError in one line naming the file and both places it may go.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"{key}={explicit}: no such file (the {what} weights, {file_name})")
        return path
    cached = hub_checkpoints() / file_name
    if cached.is_file():
        return cached
    if allow_download:
        return None
    raise WeightsError(
        f"the {what} weights are not on this machine: place {file_name} in {cached.parent}/ "
        f"(or pass {key}=<path>; metrics.allow_download=true fetches it on a connected machine; "
        "metrics.extractor=proxy uses untrained stand-in networks, logged as *_proxy)"
    )


def read_weights(path: Path, file_name: str, allow_unpublished: bool) -> tuple[dict[str, Tensor], str]:
    """(state dict, SHA-256) of the weights file `path` standing for `file_name`: its digest checked
    (`check_published`) before it is read, then read with `weights_only=True`."""
    digest = check_published(path, PUBLISHED_SHA256[file_name], allow_unpublished, UNPUBLISHED_KEY)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        why = f"{type(error).__name__}; expected a state dict of tensors, as {file_name}"
        raise WeightsError(f"{path} is not a readable weights file ({why})") from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict of tensors, as {file_name}")
    return state, digest


def fetch_weights(url: str, file_name: str, allow_unpublished: bool) -> Path:
    """Download `url` into the hub cache as `file_name`; a file whose digest `check_published`
    refuses is deleted, never left in the cache."""
    target = hub_checkpoints() / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{file_name}.{os.getpid()}.partial")
    try:
        torch.hub.download_url_to_file(url, str(partial), progress=True)
        check_published(partial, PUBLISHED_SHA256[file_name], allow_unpublished, UNPUBLISHED_KEY)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


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


def build_extractor(
    kind: str,
    weights: str | None,
    allow_download: bool,
    antialias: bool,
    allow_unpublished: bool,
    protocol: str = "torch_fidelity",
) -> Extractor:
    """The FID/KID feature extractor `kind` ("inception" or "proxy").

    `protocol` (one of PROTOCOLS, see the module docstring) chooses how images are resized to
    299 px and scaled. Under `torch_fidelity`, `antialias=False` resizes with torch-fidelity's
    TensorFlow-1.x-compatible bilinear interpolation, the resize of the published TF/torch-fidelity
    FIDs, and True with torchmetrics' default antialiased bilinear resize; the resizes differ at
    every input size but 299 px (measured in the module docstring). `pytorch_fid` has its own
    resize and takes no `antialias`. The proxy network has its own fixed resize. The weights file
    is verified and read by `read_weights` (`allow_unpublished`: see there).
    """
    if kind == "proxy":
        return Extractor(ProxyFeatures(seed=PROXY_SEED), ProxyFeatures.num_features, "proxy", None, None)
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = locate_weights(
        INCEPTION_FILE, weights, "metrics.inception_weights", allow_download, "FID Inception"
    )
    path = path or fetch_weights(fidelity.URL_INCEPTION_V3, INCEPTION_FILE, allow_unpublished)
    state, digest = read_weights(path, INCEPTION_FILE, allow_unpublished)
    # torch-fidelity would unpickle a path itself (weights_only=False); given none, it asks its
    # downloader, which is handed the state dict read above instead.
    with mock.patch.object(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: state):
        network = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(INCEPTION_FEATURES)],
            feature_extractor_weights_path=None,
            antialias=antialias,
        )
    if protocol == "pytorch_fid":
        return Extractor(
            PytorchFIDInput(network),
            INCEPTION_FEATURES,
            "inception-v3-compat (pytorch-fid input)",
            path,
            digest,
        )
    return Extractor(network, INCEPTION_FEATURES, "inception-v3-compat", path, digest)


def resize_description(protocol: str, antialias: bool) -> str:
    """How the `protocol` brings images to Inception's input, for the record beside each score."""
    if protocol == "pytorch_fid":
        return "pytorch-fid input: x / 255, torch bilinear to 299 px (align_corners=False), 2x - 1"
    if antialias:
        return "torchmetrics' antialiased bilinear resize to 299 px, (x - 128) / 128"
    return "torch-fidelity's TF1-compatible bilinear resize to 299 px, (x - 128) / 128"


class PytorchFIDInput(nn.Module):
    """pytorch-fid's input pipeline in front of torch-fidelity's Inception: uint8 images to [0, 1]
    (pytorch-fid reads files with `ToTensor`), `F.interpolate` to 299 px (bilinear, align_corners
    False), 2x - 1, then the Inception layers (`INCEPTION_LAYERS`) to the pool_3 features."""

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for name in INCEPTION_LAYERS:
            x = getattr(self.inception, name)(x)
        return torch.flatten(x, 1)


class ProxyFeatures(nn.Module):
    """An untrained, seeded CNN standing in for Inception when its weights cannot be had: four
    stride-2 convolutions at 64 px, global average pooled to 64 features."""

    num_features = 64

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        widths = (3, 16, 32, 64, self.num_features)
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(widths, widths[1:])
        )
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


def build_lpips(
    kind: str, net: str, weights: str | None, allow_download: bool, allow_unpublished: bool
) -> LPIPSNetwork:
    """torchmetrics' LPIPS with the ImageNet `net` backbone ("alex" as in MUNIT's diversity score),
    or with a seeded untrained backbone when `kind` is "proxy" (the shipped linear heads either way,
    their digest checked first). The backbone file is verified and read by `read_weights`."""
    from torchmetrics.image import lpip
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    heads = Path(inspect.getfile(lpip._NoTrainLpips)).parent / "lpips_models" / f"{net}.pth"
    check_published(heads, LPIPS_HEAD_SHA256[net], False, UNPUBLISHED_KEY)
    if kind == "proxy":
        # torchmetrics exposes no untrained-backbone switch on the metric; its network class has one.
        untrained = functools.partial(lpip._NoTrainLpips, pnet_rand=True)
        with torch.random.fork_rng(devices=[]), mock.patch.object(lpip, "_NoTrainLpips", untrained):
            torch.manual_seed(PROXY_SEED)
            metric = LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean")
        return LPIPSNetwork(metric, f"lpips-{net}-proxy", None, None)
    import torchvision.models._api as torchvision_weights

    file_name = LPIPS_BACKBONE_FILES[net]
    path = locate_weights(
        file_name, weights, "metrics.lpips_weights", allow_download, f"LPIPS {net} backbone"
    )
    path = path or fetch_weights(TORCHVISION_WEIGHTS_URL + file_name, file_name, allow_unpublished)
    state, digest = read_weights(path, file_name, allow_unpublished)
    # torchvision's builder fetches its ImageNet weights through the hub cache and unpickles them
    # (weights_only=False); its fetch is handed the state dict read above instead.
    with mock.patch.object(torchvision_weights, "load_state_dict_from_url", lambda *args, **kwargs: state):
        metric = LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean")
    return LPIPSNetwork(metric, f"lpips-{net}", path, digest)
