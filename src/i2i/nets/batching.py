"""Several calls of one network made as one forward pass over their inputs joined along the batch.

A translation model often runs one network on several inputs in an iteration: a decoder on the
translation and on the reconstruction, a discriminator on real and fake images. One pass over a
batch of k is cheaper than k passes over batches of 1 (larger matrix products, one kernel launch
per layer), and it is the same computation when the network treats every sample on its own:
instance, layer and adaptive norms do, batch norm does not. `in_one_pass` therefore falls back to
separate calls for a network with batch statistics, so the outputs are those of separate calls.
One side effect remains: a spectral-norm layer advances its power iteration once per pass, so one
joined pass makes one step of it where k calls make k (U-GAT-IT's discriminators; the estimate
converges to the same largest singular value).
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def mixes_samples(network: Callable[..., Any]) -> bool:
    """Whether a pass over a batch differs from passes over its samples one by one: the network (or
    the module of a bound method) has batch norm, or an instance norm tracking running statistics.
    Anything that is not a module is assumed to mix samples."""
    module = getattr(network, "__self__", network)
    if not isinstance(module, nn.Module):
        return True
    return any(
        isinstance(layer, _BatchNorm) or getattr(layer, "track_running_stats", False)
        for layer in module.modules()
    )


def _split(output: Any, sizes: list[int]) -> list[Any]:
    """The per-call pieces of a batched output: a tensor, or a list/tuple/named tuple of them."""
    if isinstance(output, Tensor):
        return list(output.split(sizes))
    per_call = zip(*(_split(field, sizes) for field in output))
    if hasattr(output, "_fields"):
        return [type(output)(*fields) for fields in per_call]
    return [type(output)(fields) for fields in per_call]


def in_one_pass(network: Callable[..., Any], *calls: Sequence[Tensor]) -> list[Any]:
    """`[network(*call) for call in calls]`, computed in one pass when the network does not mix
    samples and the calls' inputs agree in every dimension but the batch."""
    shapes_agree = all(len({t.shape[1:] for t in position}) == 1 for position in zip(*calls))
    if len(calls) == 1 or not shapes_agree or mixes_samples(network):
        return [network(*call) for call in calls]
    sizes = [call[0].size(0) for call in calls]
    return _split(network(*(torch.cat(position) for position in zip(*calls))), sizes)
