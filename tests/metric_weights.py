"""Random-weight stand-ins for the metric networks' files, written under their real names, so the
tests run the real loading code (hub-cache lookup, torch.load, load_state_dict) with no download."""

from pathlib import Path
from unittest import mock

import torch
import torchvision
from torch_fidelity import feature_extractor_inceptionv3 as fidelity

from i2i.metrics.extractors import INCEPTION_FILE, LPIPS_BACKBONE_FILES


def random_inception_state() -> dict[str, torch.Tensor]:
    """torch-fidelity's Inception at its default (random) initialisation."""
    torch.manual_seed(0)
    with (
        mock.patch.object(fidelity, "load_state_dict_from_url", return_value={}),
        mock.patch.object(fidelity.FeatureExtractorInceptionV3, "load_state_dict"),
    ):
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in network.modules():  # variance-preserving, so 2048-d features are not ~0
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return network.state_dict()


def random_alexnet_state() -> dict[str, torch.Tensor]:
    """torchvision's AlexNet, random convolutions; the classifier (unused by LPIPS, 230 MB) as
    zero tensors that share one element of storage, so the file stays ~10 MB."""
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    return {k: torch.zeros(()).expand(v.shape) if k.startswith("classifier") else v for k, v in state.items()}


def write_metric_weights(folder: Path) -> Path:
    """`folder/hub/checkpoints/` holding the Inception and AlexNet files; returns `folder`, the
    TORCH_HOME to use."""
    checkpoints = folder / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(random_inception_state(), checkpoints / INCEPTION_FILE)
    torch.save(random_alexnet_state(), checkpoints / LPIPS_BACKBONE_FILES["alex"])
    return folder
