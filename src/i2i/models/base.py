"""The training spine shared by every model (DESIGN §3).

A model subclasses `TranslationModule` and supplies its networks, `optimizer_parameters`, the loss
methods of its updates (`discriminator_loss`, `generator_loss`, each returning `(loss, logs)`) and
the methods of its abilities (`i2i.abilities`: `translate`, `translate_to_class`, ...). The spine
owns everything around them: the optimizer choreography under Lightning's manual optimization
(toggling, `manual_backward`, gradient clipping after AMP unscaling, one scheduler step per
iteration), logging, the guards (a NaN/inf loss or gradient, a loss or a parameter
norm beyond its bound), the iteration counter and the state a resumed run needs to continue exactly
(the counter and the random generators).

One *iteration* is one batch: by default a discriminator update, then a generator update. Models
with another order (CycleGAN: G first), a critic schedule (LOMIT: G every n_critic iterations) or
more optimizers (TUNIT's guiding network) override `updates`; a forward pass that several updates
share is made once in `before_updates` (CUT's translation). Lightning's `global_step` counts
optimizer steps in manual mode; nothing here relies on it.
"""

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn.utils import get_total_norm
from torch.optim import Optimizer

from i2i.abilities import DataKind, Translator
from i2i.distributed import gather_objects
from i2i.errors import (
    ConfigError,
    DivergedError,
    NonFiniteGradientError,
    NonFiniteLossError,
    check_choice,
    check_non_negative,
    check_positive,
)
from i2i.rng import restore_rng_state, rng_state, seed_rank
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch, Direction

log = logging.getLogger(__name__)

Logs = dict[str, Tensor]
Carry = dict[str, Tensor]
LossFn = Callable[[Batch, Carry], tuple[Tensor, Logs]]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], Any]


@dataclass(frozen=True)
class Update:
    """One optimisation step of an iteration: its log prefix, the optimizers it steps, its loss.

    `loss(batch, carry)` returns the total loss and its unweighted terms. `carry` is a dict that
    lives for one iteration: an update may leave detached tensors in it (CycleGAN's fakes) for the
    updates after it, so no model pays for a forward pass it already made.

    `after_step`, if given, runs right after the optimizers stepped (not when the update, or the
    step of every one of its optimizers, was skipped): the place for projections the official code
    applies after each step, e.g. U-GAT-IT's clipping of rho to [0, 1].
    """

    name: str
    optimizers: tuple[str, ...]
    loss: LossFn
    after_step: Callable[[], None] | None = None


class TranslationModule(pl.LightningModule):
    """Base class of every translation model; see the module docstring.

    Args:
        optimizers: one optimizer factory per name of `optimizer_parameters()` (Hydra `_partial_`).
        scheduler: a scheduler factory applied to every optimizer, or None for a constant rate.
        gradient_clip_val: clip each update's gradients to this norm (or value); 0 disables.
        gradient_clip_algorithm: "norm" or "value".
        nonfinite: what a NaN/inf loss, or a NaN/inf gradient about to be stepped, does: "raise" stops
            the run naming the term (the network and parameter); "skip" drops that update (that
            optimizer step). Under fp16 loss scaling the GradScaler handles overflowed gradients.
        max_loss: stop the run when an update's loss or one of its terms exceeds this in magnitude
            (a run diverging without a NaN); None: no bound.
        max_parameter_norm: stop the run when the norm of the parameters an optimizer trains exceeds
            this, checked before each of its steps; None: no bound.
        channels_last: run the networks and batches in channels_last memory format.
    """

    #: the kind of data the model trains on; it must equal the datamodule's `kind`. What else the
    #: model can do (translate by direction, with styles, to a class...) is the abilities it
    #: implements, the protocols of `i2i.abilities`.
    data_kind: ClassVar[DataKind] = "unpaired"

    def __init__(
        self,
        *,
        optimizers: Mapping[str, OptimizerFactory],
        scheduler: SchedulerFactory | None,
        gradient_clip_val: float,
        gradient_clip_algorithm: str,
        nonfinite: str,
        max_loss: float | None,
        max_parameter_norm: float | None,
        channels_last: bool,
    ) -> None:
        super().__init__()
        check_non_negative("model.gradient_clip_val", gradient_clip_val)
        check_choice("model.gradient_clip_algorithm", gradient_clip_algorithm, ("norm", "value"))
        check_choice("model.nonfinite", nonfinite, ("raise", "skip"))
        for key, bound in (("model.max_loss", max_loss), ("model.max_parameter_norm", max_parameter_norm)):
            if bound is not None:
                check_positive(key, bound)
        self.automatic_optimization = False
        self.optimizer_factories = dict(optimizers)
        self.scheduler_factory = scheduler
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.nonfinite = nonfinite
        self.max_loss = max_loss
        self.max_parameter_norm = max_parameter_norm
        self.channels_last = channels_last
        self.iteration = 0
        self.skipped_updates = 0
        self._optimizer_names: list[str] = []
        self._trained_parameters: dict[str, list[nn.Parameter]] = {}
        self._rng_to_restore: dict[str, Any] | None = None
        self._update_name = ""  # the update whose optimizers are stepping, for the gradient guard
        self._step_skipped = False
        # Each update's latest losses (update name -> what it logs), so that an update that skips
        # iterations (DRIT's G every 3rd, a critic schedule) is logged at every logging step, not only
        # when its own phase meets the logging cadence.
        self._latest_logs: dict[str, tuple[Tensor, Logs, tuple[str, ...]]] = {}

    # ------------------------------------------------------------------ what a model provides
    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters each named optimizer trains, e.g. {"generator": [...], "discriminator": [...]}."""
        raise NotImplementedError

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        raise NotImplementedError

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        raise NotImplementedError

    def updates(self, iteration: int) -> Sequence[Update]:
        """The updates of one iteration, in order. Default: the discriminator, then the generator."""
        return (
            Update("d", ("discriminator",), self.discriminator_loss),
            Update("g", ("generator",), self.generator_loss),
        )

    def before_updates(self, batch: Batch, carry: Carry) -> None:
        """Forward passes that several updates of the iteration share, made before the first update
        with every network trainable (CUT: the official `forward()`, G's translation that D scores and
        G trains through). What it leaves in `carry` keeps its graph; an update that must not train
        through it detaches it. Default: nothing."""

    def after_updates(self, batch: Batch, carry: Carry) -> None:
        """Advance state that belongs to the iteration rather than to one update, after all of them and
        before any callback sees the iteration (TUNIT: the MoCo queue and the momentum guide). Default:
        nothing."""

    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """Named rows of an image grid from test images {"A": ..., "B": ...}: per direction the
        input, its translation and the translation translated back. A model that is no two-domain
        `Translator` shows itself otherwise and overrides this."""
        if not isinstance(self, Translator):
            name = type(self).__name__
            raise NotImplementedError(f"{name} has no direction to translate by: define sample_rows")
        rows = []
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            back: Direction = "BtoA" if direction == "AtoB" else "AtoB"
            real = images[source]
            fake = self.translate(real, direction)
            rows += [
                (f"real_{source}", real),
                (f"fake_{target}", fake),
                (f"cycle_{source}", self.translate(fake, back)),
            ]
        return rows

    # ------------------------------------------------------------------ Lightning hooks
    def configure_optimizers(self) -> Any:
        groups = self.optimizer_parameters()
        if set(groups) != set(self.optimizer_factories):
            raise ConfigError(
                "model.optimizers",
                sorted(self.optimizer_factories),
                f"this model needs exactly {sorted(groups)}",
            )
        self._optimizer_names = list(groups)
        self._trained_parameters = {name: list(params) for name, params in groups.items()}
        optimizers = [self._build_optimizer(name) for name in self._optimizer_names]
        if self.scheduler_factory is None:
            return optimizers
        return optimizers, [self.scheduler_factory(optimizer) for optimizer in optimizers]

    def _build_optimizer(self, name: str) -> Optimizer:
        """The optimizer of one parameter group, as configured, except that a fused one is built
        unfused when gradients are clipped under fp16 loss scaling: a fused step unscales the
        gradients itself, after the point where they must be clipped."""
        factory, parameters = self.optimizer_factories[name], self._trained_parameters[name]
        fp16 = self._trainer is not None and self._trainer.precision == "16-mixed"
        if fp16 and self.gradient_clip_val > 0 and getattr(factory, "keywords", {}).get("fused"):
            log.info(
                "model.optimizers.%s: fused off, gradients are clipped under 16-mixed loss scaling", name
            )
            return factory(parameters, fused=False)
        return factory(parameters)

    def setup(self, stage: str) -> None:
        # Buffers each DDP rank keeps for itself (modules marked `rank_local`, e.g. image pools):
        # PyTorch's DDP and GANDDPStrategy read this list and never broadcast them.
        self._ddp_params_and_buffers_to_ignore = [
            f"{prefix}.{name}" if prefix else name
            for prefix, module in self.named_modules()
            if getattr(module, "rank_local", False)
            for name, _ in module.named_buffers(recurse=False)
        ]

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.trainer.world_size > 1:
            # Every rank was seeded alike (so the networks start equal); from here each draws its own
            # noise (styles, pool choices), as one process drawing for the whole global batch would.
            seed_rank(torch.initial_seed(), self.trainer.global_rank)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            restore_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        batch = self._prepared(batch)
        carry: Carry = {}
        self.before_updates(batch, carry)
        for update in self.updates(self.iteration):
            self._run_update(update, batch, carry)
        self.after_updates(batch, carry)
        if self._logging_now():
            self._log_latest_updates()
        for scheduler in self._schedulers():
            scheduler.step()
        self.iteration += 1

    def _prepared(self, batch: Batch) -> Batch:
        """The batch in the memory format the networks run in."""
        if not self.channels_last:
            return batch
        return {
            k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in batch.items()
        }

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # Lightning calls this after AMP has unscaled the gradients (and GANDDPStrategy averaged them,
        # so every rank decides alike), the one correct place to check and clip them.
        if not self._step_is_sound(optimizer):
            self._step_skipped = True
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = None  # the optimizer leaves parameters without a gradient untouched
            return
        if self.gradient_clip_val > 0:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.gradient_clip_val,
                gradient_clip_algorithm=self.gradient_clip_algorithm,
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = rng_state()
        checkpoint["i2i"] = {"iteration": self.iteration, "rng": rng}
        if self._world_size() > 1:  # every rank saves (rank 0 writes): keep each rank's generators
            checkpoint["i2i"]["rng_by_rank"] = gather_objects(rng)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("i2i", {})
        self.iteration = state.get("iteration", 0)
        # Applied at the next training step: Lightning draws random numbers while it restores.
        self._rng_to_restore = state.get("rng")
        by_rank, world_size = state.get("rng_by_rank"), self._world_size()
        if world_size > 1:
            # Resumed on another number of processes, each rank keeps its fresh per-rank seed.
            same_world = by_rank is not None and len(by_rank) == world_size
            self._rng_to_restore = by_rank[self.trainer.global_rank] if same_world else None

    # ------------------------------------------------------------------ the choreography
    def _run_update(self, update: Update, batch: Batch, carry: Carry) -> None:
        optimizers = [self._optimizer(name) for name in update.optimizers]
        self._train_only(update.optimizers)
        try:
            loss, logs = update.loss(batch, carry)
            if not self._loss_is_sound(update, loss, logs):
                return
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            self._update_name = update.name
            stepped = [self._step(optimizer) for optimizer in optimizers]
            if update.after_step is not None and any(stepped):
                update.after_step()
        finally:
            self._train_only(self._optimizer_names)
        detached = {k: v.detach() for k, v in logs.items()}
        self._latest_logs[update.name] = (loss.detach(), detached, update.optimizers)

    def _log_latest_updates(self) -> None:
        """Log each update's latest losses (`train/<update>_loss`, `train/<update>_<term>`) and the
        learning rates of its optimizers."""
        values: dict[str, Any] = {}
        for name, (loss, logs, optimizers) in self._latest_logs.items():
            values[f"train/{name}_loss"] = loss
            values |= {f"train/{name}_{k}": v.float().mean() for k, v in logs.items()}
            values |= {
                f"train/lr_{group}": self._optimizer(group).param_groups[0]["lr"] for group in optimizers
            }
        if values:
            self.log_dict(values, on_step=True, on_epoch=False, prog_bar=False)

    def _step(self, optimizer: Any) -> bool:
        """Step `optimizer` unless the gradient guard (`on_before_optimizer_step`) skipped it; whether it
        stepped."""
        self._step_skipped = False
        optimizer.step()
        return not self._step_skipped

    def _optimizer(self, name: str) -> Any:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[self._optimizer_names.index(name)]

    def _schedulers(self) -> list[Any]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    def _train_only(self, names: Iterable[str]) -> None:
        """Freeze every optimizer's parameters except those of `names` (Lightning's toggle, for
        updates that step several optimizers at once)."""
        names = set(names)
        for name, params in self._trained_parameters.items():
            for param in params:
                param.requires_grad_(name in names)

    def _loss_is_sound(self, update: Update, loss: Tensor, logs: Logs) -> bool:
        """Whether the update may go on: its loss is finite (else raise or skip, per `nonfinite`) and
        neither it nor a term exceeds `max_loss` (else raise DivergedError). One host sync."""
        terms = {f"{update.name}_loss": loss} | {f"{update.name}_{k}": v for k, v in logs.items()}
        magnitudes = torch.stack([v.detach().float().abs().max() for v in terms.values()]).tolist()
        if not math.isfinite(magnitudes[0]):
            bad = [
                f"{k}={v.detach().float().mean().item():.4g}"
                for k, v in logs.items()
                if not torch.isfinite(v).all()
            ]
            message = (
                f"iteration {self.iteration}: the {update.name} loss is {loss.item()} "
                f"(non-finite terms: {', '.join(bad) or 'none; the weighted sum overflowed'})"
            )
            return self._nonfinite(NonFiniteLossError, message, "drop such updates")
        if self.max_loss is not None:
            for name, magnitude in zip(terms, magnitudes):
                if not magnitude <= self.max_loss:
                    raise DivergedError(
                        f"iteration {self.iteration}: the run diverged: |{name}| = {magnitude:.4g} exceeds "
                        f"model.max_loss={self.max_loss:g}; lower the learning rate or raise model.max_loss"
                    )
        return True

    def _step_is_sound(self, optimizer: Optimizer) -> bool:
        """Whether `optimizer` may step: its gradients are finite (else raise or skip, per `nonfinite`;
        left to the GradScaler under fp16 loss scaling, where overflow is routine) and its parameters'
        norm is within `max_parameter_norm` (else raise DivergedError). One fused norm per check and
        one host sync in all."""
        params = [param for group in optimizer.param_groups for param in group["params"]]
        grads = [param.grad for param in params if param.grad is not None]
        check_grads = bool(grads) and getattr(self.trainer.precision_plugin, "scaler", None) is None
        norms = [get_total_norm(grads)] if check_grads else []
        if self.max_parameter_norm is not None:
            norms.append(get_total_norm(params))
        if not norms:
            return True
        values = torch.stack([norm.float() for norm in norms]).tolist()
        if check_grads and not math.isfinite(values[0]):
            # the first parameter with a NaN/inf gradient (none: only the sum of squares overflowed)
            bad = next((p for p in params if p.grad is not None and not torch.isfinite(p.grad).all()), None)
            if bad is not None:
                name = self._parameter_names().get(id(bad), "?")
                message = (
                    f"iteration {self.iteration}: a non-finite gradient in the {self._update_name} update: "
                    f"network {name.split('.')[0]}, first non-finite parameter {name}"
                )
                return self._nonfinite(NonFiniteGradientError, message, "skip such optimizer steps")
        if self.max_parameter_norm is not None and not values[-1] <= self.max_parameter_norm:
            largest = max(params, key=lambda p: p.detach().float().norm().item())
            names = self._parameter_names()
            raise DivergedError(
                f"iteration {self.iteration}: the run diverged: before the {self._update_name} update's "
                f"step, the parameter norm of {_networks(params, names)} is {values[-1]:.4g} (largest "
                f"{names.get(id(largest), '?')}), beyond "
                f"model.max_parameter_norm={self.max_parameter_norm:g}; "
                "lower the learning rate or raise model.max_parameter_norm"
            )
        return True

    def _parameter_names(self) -> dict[int, str]:
        return {id(param): name for name, param in self.named_parameters()}

    def _nonfinite(self, error: type[NonFiniteLossError], message: str, skip_does: str) -> bool:
        """Raise `error` with `message`, or (model.nonfinite=skip) count and log a skip; False."""
        if self.nonfinite == "raise":
            raise error(f"{message}; set model.nonfinite=skip to {skip_does}")
        self.skipped_updates += 1
        log.warning("%s; skipped", message)
        return False

    def _world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def _logging_now(self) -> bool:
        # the same cadence at which Lightning writes step metrics to the logger
        trainer = self._trainer
        return trainer is not None and (self.iteration + 1) % max(1, trainer.log_every_n_steps) == 0


def _networks(params: Sequence[nn.Parameter], names: Mapping[int, str]) -> str:
    """The top-level modules holding `params`, e.g. "G_a, G_b"."""
    return ", ".join(dict.fromkeys(names.get(id(p), "?").split(".")[0] for p in params))
