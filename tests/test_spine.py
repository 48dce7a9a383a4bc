"""The training spine: update order, freezing, schedulers, clipping, NaN handling, run length."""

import csv
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from helpers.spine import UNBOUNDED_SPINE
from pytorch_lightning.loggers import CSVLogger
from torch import nn

from i2i.callbacks.run import StopAtIteration
from i2i.data.datamodule import UnpairedDataModule
from i2i.data.synthetic.color import ShapesColor
from i2i.errors import ConfigError, DivergedError, NonFiniteGradientError, NonFiniteLossError
from i2i.models.base import TranslationModule, Update


class Toy(TranslationModule):
    """A 1x1-conv 'GAN' whose losses record what the spine let them see."""

    def __init__(self, nan_term: str | None = None, **spine) -> None:
        super().__init__(**(UNBOUNDED_SPINE | spine))
        self.G, self.D = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 1, 1)
        self.nan_term = nan_term
        self.seen: list[tuple[str, bool, bool]] = []

    def optimizer_parameters(self):
        return {"generator": list(self.G.parameters()), "discriminator": list(self.D.parameters())}

    def _record(self, name: str) -> None:
        self.seen.append((name, self.G.weight.requires_grad, self.D.weight.requires_grad))

    def discriminator_loss(self, batch, carry):
        self._record("d")
        carry["from_d"] = torch.ones(())
        loss = self.D(batch["B"]).pow(2).mean() + self.D(self.G(batch["A"]).detach()).pow(2).mean()
        return loss, {"real": loss}

    def generator_loss(self, batch, carry):
        self._record("g")
        assert "from_d" in carry  # the earlier update's carry reaches the later one
        gan = self.D(self.G(batch["A"])).pow(2).mean()
        if self.nan_term == "gan":
            gan = gan * float("nan")
        return gan, {"gan": gan}


def fit(model: TranslationModule, iterations: int, logger=False, log_every_n_steps: int = 1) -> pl.Trainer:
    data = UnpairedDataModule(domains=ShapesColor(image_size=16, num_train=8, num_test=2), image_size=16)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=-1,
        max_epochs=-1,
        callbacks=[StopAtIteration(iterations)],
        logger=logger,
        log_every_n_steps=log_every_n_steps,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=data)
    return trainer


def sgd(lr: float = 0.1):
    return {"generator": partial(torch.optim.SGD, lr=lr), "discriminator": partial(torch.optim.SGD, lr=lr)}


def test_each_update_trains_only_its_own_networks_in_order():
    model = Toy(optimizers=sgd())
    fit(model, 2)
    assert model.seen == [("d", False, True), ("g", True, False)] * 2
    assert model.G.weight.requires_grad and model.D.weight.requires_grad  # restored afterwards


def test_run_length_counts_iterations_not_optimizer_steps():
    model = Toy(optimizers=sgd())
    trainer = fit(model, 5)
    assert model.iteration == 5
    assert trainer.global_step == 10  # Lightning counts the two optimizer steps of each iteration


class SparseGenerator(Toy):
    """Toy whose G updates every third iteration (DRIT's schedule), D every iteration."""

    def updates(self, iteration):
        critic = Update("d", ("discriminator",), self.discriminator_loss)
        if (iteration + 1) % 3:
            return (critic,)
        return critic, Update("g", ("generator",), self.generator_loss)


def test_every_logging_step_has_the_latest_losses_of_every_update_that_ran(tmp_path):
    model = SparseGenerator(optimizers=sgd())
    # G runs at iterations 2, 5, 8, 11; the log cadence of 4 writes at 3, 7, 11, which G's phase meets
    # only at 11: each row must still carry G's latest losses
    fit(model, 12, logger=CSVLogger(tmp_path, name="", version=""), log_every_n_steps=4)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row in rows:
        assert row["train/d_loss"] and row["train/g_loss"] and row["train/g_gan"]
        assert row["train/lr_generator"] and row["train/lr_discriminator"]
    assert len({row["train/g_loss"] for row in rows}) == 3  # a new value each time, not one repeated


def test_schedulers_step_once_per_iteration():
    decay = partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    model = Toy(optimizers=sgd(lr=0.01), scheduler=decay)
    fit(model, 5)
    assert [opt.param_groups[0]["lr"] for opt in model.trainer.optimizers] == pytest.approx([0.0025, 0.0025])


def test_gradient_clipping_bounds_every_update():
    model = Toy(optimizers=sgd(lr=1.0), gradient_clip_val=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    fit(model, 1)
    change = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert change.norm() <= 2e-3 + 1e-7  # two updates, each clipped to norm 1e-3 at lr 1


def test_nonfinite_loss_stops_the_run_naming_the_iteration_and_term():
    model = Toy(nan_term="gan", optimizers=sgd())
    with pytest.raises(
        NonFiniteLossError, match=r"iteration 0: the g loss is nan \(non-finite terms: gan=nan\)"
    ):
        fit(model, 3)


def test_nonfinite_loss_can_be_skipped():
    model = Toy(nan_term="gan", nonfinite="skip", optimizers=sgd())
    g_before = model.G.weight.detach().clone()
    fit(model, 3)
    assert model.skipped_updates == 3 and model.iteration == 3
    assert torch.equal(model.G.weight, g_before)


def test_optimizer_names_must_match_the_model():
    model = Toy(optimizers={"generator": partial(torch.optim.SGD, lr=0.1)})
    with pytest.raises(ConfigError, match="model.optimizers"):
        fit(model, 1)


def test_bad_spine_settings_are_refused():
    with pytest.raises(ConfigError, match="model.nonfinite='ignore'"):
        Toy(optimizers=sgd(), nonfinite="ignore")
    with pytest.raises(ConfigError, match="model.gradient_clip_val=-1"):
        Toy(optimizers=sgd(), gradient_clip_val=-1)
    with pytest.raises(ConfigError, match="model.max_loss=0"):
        Toy(optimizers=sgd(), max_loss=0)
    with pytest.raises(ConfigError, match="model.max_parameter_norm=-1"):
        Toy(optimizers=sgd(), max_parameter_norm=-1)


class Clipped(Toy):
    """Toy whose generator update clamps G's weights after each step, recording what it saw."""

    def __init__(self, **spine) -> None:
        super().__init__(**spine)
        self.after: list[bool] = []

    def updates(self, iteration: int):
        d, g = super().updates(iteration)
        return d, Update(g.name, g.optimizers, g.loss, after_step=self.clamp)

    def clamp(self) -> None:
        # the step has happened: G differs from the weights the loss saw; clamping is visible
        self.after.append(bool(self.G.weight.grad is not None))
        with torch.no_grad():
            self.G.weight.clamp_(-0.01, 0.01)


def test_after_step_runs_after_the_optimizer_step_of_its_update_only():
    model = Clipped(optimizers=sgd(lr=10.0))
    fit(model, 2)
    assert model.after == [True, True]  # once per iteration, after the generator's backward and step
    assert model.G.weight.abs().max() <= 0.01  # the last thing to touch G was the clamp, not the step


def test_after_step_is_skipped_with_its_update():
    model = Clipped(optimizers=sgd(), nonfinite="skip")
    model.nan_term = "gan"
    fit(model, 2)
    assert model.after == [] and model.skipped_updates == 2


class NaNGradient(torch.autograd.Function):
    """The identity whose gradient is NaN: a finite loss whose backward poisons what lies before it."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class PoisonedGradient(Toy):
    """Toy whose generator update has a finite loss and a NaN gradient in G (never in D)."""

    def generator_loss(self, batch, carry):
        self._record("g")
        return self.D(NaNGradient.apply(self.G(batch["A"]))).pow(2).mean(), {}


def test_nonfinite_gradient_stops_the_run_naming_the_update_network_and_parameter():
    model = PoisonedGradient(optimizers=sgd())
    expected = (
        r"iteration 0: a non-finite gradient in the g update: network G, first non-finite parameter G\.weight"
    )
    with pytest.raises(NonFiniteGradientError, match=expected + "; set model.nonfinite=skip"):
        fit(model, 3)
    assert torch.isfinite(model.G.weight).all()  # stopped before the step could write NaN weights


def test_nonfinite_gradient_step_can_be_skipped_and_training_continues():
    torch.manual_seed(0)
    model = PoisonedGradient(nonfinite="skip", optimizers=adam())
    g_before, d_before = model.G.weight.detach().clone(), model.D.weight.detach().clone()
    fit(model, 3)
    assert model.iteration == 3 and model.skipped_updates == 3  # every G step skipped, none of D's
    assert torch.equal(model.G.weight, g_before)
    assert not torch.equal(model.D.weight, d_before) and torch.isfinite(model.D.weight).all()
    g_optimizer = model.trainer.optimizers[0]
    assert all(not g_optimizer.state[p] for p in model.G.parameters())  # Adam never counted a G step


def adam(lr: float = 0.1):
    """Fused Adam, as conf/model/*.yaml configure it."""
    return {name: partial(torch.optim.Adam, lr=lr, fused=True) for name in ("generator", "discriminator")}


def test_a_loss_beyond_max_loss_stops_the_run_naming_the_iteration_and_term():
    model = Toy(optimizers=sgd(), max_loss=1e3)
    with torch.no_grad():
        model.D.bias.fill_(1e3)  # D's outputs ~1e3, its squared loss terms ~1e6
    expected = r"iteration 0: the run diverged: \|d_loss\| = .* exceeds model.max_loss=1000"
    with pytest.raises(DivergedError, match=expected):
        fit(model, 2)


def test_a_diverging_run_stops_at_the_parameter_norm_bound():
    # Adam at lr 1e6, the divergence without a NaN: every weight moves by ~1e6 per step
    model = Toy(optimizers=adam(lr=1e6), max_parameter_norm=1e4)
    expected = r"iteration 1: the run diverged: before the d update's step, the parameter norm of D is "
    with pytest.raises(DivergedError, match=expected + r".* beyond model.max_parameter_norm=10000"):
        fit(model, 20)
    assert model.iteration == 1


def test_bounds_inside_the_limits_change_nothing():
    torch.manual_seed(0)
    bounded = Toy(optimizers=sgd(), max_loss=1e6, max_parameter_norm=1e6)
    free = Toy(optimizers=sgd())
    free.load_state_dict(bounded.state_dict())
    fit(bounded, 3)
    fit(free, 3)
    for name, value in bounded.state_dict().items():
        assert torch.equal(value, free.state_dict()[name])
