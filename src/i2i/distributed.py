"""Data-parallel training of GANs under manual optimization: `GANDDPStrategy` (conf/trainer/ddp.yaml).

A GAN iteration runs several updates, each stepping some optimizers while the other networks are
frozen. PyTorch's `DistributedDataParallel` reduces gradients for one backward pass over all of
the module's parameters, so under Lightning's `ddp` the discriminator update fails on the frozen
generator ("parameters that were not used in producing the loss"), and with
`find_unused_parameters=True` every backward walks the autograd graph and all-reduces the frozen
half too, as zeros: twice the traffic of the parameters actually trained.

This strategy does not wrap the model. Each optimizer's gradients are averaged across ranks just
before it steps (after `manual_backward`, before AMP unscaling, so every rank sees the same
overflow and skips the same steps; clipping in `on_before_optimizer_step` then acts on the averaged
gradients). Only the parameters an update trains travel, once, in flat buckets; it works for any
update order, critic schedule, or network used several times or through methods other than
`forward`. What it gives up is DDP's overlap of communication with the backward pass;
docs/speed.md ("Data parallel on a CPU") gives the measured cost of both.

Like DDP, it broadcasts rank 0's parameters and buffers at the start and rank 0's buffers (e.g.
BatchNorm statistics) before every training step, except the names in the module's
`_ddp_params_and_buffers_to_ignore` (PyTorch's own opt-out list, which the spine fills with the
rank-local buffers such as CycleGAN's image pools).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.optim import Optimizer

from i2i.errors import check_positive


class GANDDPStrategy(DDPStrategy):
    """DDP for models with several optimizers stepped in turn; see the module docstring.

    Args:
        bucket_cap_mb: gradients are averaged in flat buckets of at most this size (as DDP's).
        broadcast_buffers: send rank 0's buffers to every rank before each training step.
        **kwargs: `DDPStrategy` arguments: `start_method` ("popen" re-runs the command per rank,
            "spawn" forks workers from Python, needed inside a Hydra multirun),
            `process_group_backend` (None: nccl on GPU, gloo on CPU), `timeout`, ...
    """

    def __init__(self, *, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True, **kwargs: Any) -> None:
        check_positive("trainer.strategy.bucket_cap_mb", bucket_cap_mb)
        super().__init__(**kwargs)
        self.bucket_bytes = int(bucket_cap_mb * 2**20)
        self.broadcast_buffers = broadcast_buffers

    def configure_ddp(self) -> None:
        # No DistributedDataParallel wrapper: the model stays the LightningModule; ranks start equal.
        assert self.model is not None
        _broadcast_coalesced(list(self._synced_state(self.model, parameters=True)), self.bucket_bytes)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.world_size > 1:
            _broadcast_coalesced(
                list(self._synced_state(self.lightning_module, parameters=False)), self.bucket_bytes
            )
        return super().training_step(*args, **kwargs)

    def optimizer_step(
        self, optimizer: Optimizer, closure: Callable[[], Any], model: Any = None, **kwargs: Any
    ) -> Any:
        if self.world_size > 1:
            average_gradients(
                [p for group in optimizer.param_groups for p in group["params"]], self.bucket_bytes
            )
        return super().optimizer_step(optimizer, closure, model, **kwargs)

    @staticmethod
    def _synced_state(module: nn.Module, *, parameters: bool) -> Iterable[Tensor]:
        ignored = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
        named = (
            [*module.named_parameters(), *module.named_buffers()] if parameters else module.named_buffers()
        )
        return (tensor.data for name, tensor in named if name not in ignored)


def _buckets(tensors: Sequence[Tensor], bucket_bytes: int) -> list[list[int]]:
    """Indices of `tensors` grouped by device and dtype into buckets of at most `bucket_bytes`
    (a single larger tensor gets a bucket of its own)."""
    by_kind: dict[tuple[torch.device, torch.dtype], list[list[int]]] = {}
    sizes: dict[tuple[torch.device, torch.dtype], int] = {}
    for index, tensor in enumerate(tensors):
        kind, size = (tensor.device, tensor.dtype), tensor.numel() * tensor.element_size()
        buckets = by_kind.setdefault(kind, [[]])
        if buckets[-1] and sizes[kind] + size > bucket_bytes:
            buckets.append([])
            sizes[kind] = 0
        buckets[-1].append(index)
        sizes[kind] = sizes.get(kind, 0) + size
    return [bucket for buckets in by_kind.values() for bucket in buckets]


def _broadcast_coalesced(tensors: list[Tensor], bucket_bytes: int) -> None:
    """Overwrite `tensors` on every rank with rank 0's values, a few flat messages in all."""
    tensors = [t for t in tensors if t.numel()]
    for bucket in _buckets(tensors, bucket_bytes):
        members = [tensors[i] for i in bucket]
        flat = _flatten_dense_tensors(members)
        dist.broadcast(flat, src=0)
        for tensor, value in zip(members, _unflatten_dense_tensors(flat, members)):
            tensor.copy_(value)


@torch.no_grad()
def average_gradients(parameters: Sequence[nn.Parameter], bucket_bytes: int) -> None:
    """Replace each parameter's gradient by its mean over the ranks, as DDP computes it.

    A parameter without a gradient on some rank counts as zero there (as in DDP); one without a
    gradient on every rank keeps `grad=None`, so the optimizer skips it exactly as one process would.
    """
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        return
    world_size = dist.get_world_size()
    used = torch.tensor(
        [p.grad is not None for p in parameters], dtype=torch.float32, device=parameters[0].device
    )
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    works = [dist.all_reduce(used, async_op=True)]
    flats = []
    for bucket in _buckets(grads, bucket_bytes):
        flat = _flatten_dense_tensors([grads[i] for i in bucket])
        works.append(dist.all_reduce(flat, async_op=True))
        flats.append((bucket, flat))
    for work in works:
        work.wait()
    for bucket, flat in flats:
        flat.div_(world_size)
        for index, value in zip(bucket, _unflatten_dense_tensors(flat, [grads[i] for i in bucket])):
            parameter = parameters[index]
            if not used[index]:
                parameter.grad = None
            elif parameter.grad is None:
                parameter.grad = value.clone()
            else:
                parameter.grad.copy_(value)


def gather_objects(value: Any) -> list[Any]:
    """`value` from every DDP rank, in rank order."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered
