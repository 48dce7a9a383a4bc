"""A model's abilities are the typed protocols of `i2i.abilities`: which model has which, and a new model
that nobody outside its own file knows trains, translates with i2i-translate's code and is scored by
the metrics callback through them alone."""

from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers.spine import SCHEMA_SPINE
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from PIL import Image
from torch import Tensor, nn

from i2i import translate as translate_cli
from i2i.abilities import (
    AttentionMaps,
    Clusterer,
    ExemplarMaskTranslator,
    FewShotTranslator,
    InstanceTranslator,
    OneWayTranslator,
    ReferenceTranslator,
    SampleGrid,
    StyleTranslator,
    Translator,
    WeightAveraged,
)
from i2i.callbacks.images import ImageGrid
from i2i.callbacks.metrics import SyntheticMetrics
from i2i.errors import ConfigError
from i2i.models.base import Carry, Logs, TranslationModule
from i2i.train import build_model
from i2i.types import Batch, Direction

ABILITIES = (
    Translator,
    InstanceTranslator,
    OneWayTranslator,
    StyleTranslator,
    ReferenceTranslator,
    ExemplarMaskTranslator,
    FewShotTranslator,
    Clusterer,
    WeightAveraged,
    AttentionMaps,
    SampleGrid,
)
# model: (a data config it trains on, that data's kind, the model's abilities); `i2i.abilities`' table
MODELS = {
    "cyclegan": ("shapes_color", "unpaired", {Translator, SampleGrid}),
    "unit": ("shapes_color", "unpaired", {Translator, SampleGrid}),
    "munit": ("shapes_color", "unpaired", {Translator, StyleTranslator, SampleGrid}),
    "drit": ("shapes_color", "unpaired", {Translator, StyleTranslator, SampleGrid}),
    "ugatit": ("shapes_geometry", "unpaired", {Translator, AttentionMaps, SampleGrid}),
    "cut": ("shapes_color", "unpaired", {Translator, OneWayTranslator, SampleGrid}),
    "fastcut": ("shapes_geometry", "unpaired", {Translator, OneWayTranslator, SampleGrid}),
    "funit": ("shapes_fewshot", "fewshot", {FewShotTranslator, WeightAveraged, SampleGrid}),
    "coco_funit": ("shapes_fewshot", "fewshot", {FewShotTranslator, WeightAveraged, SampleGrid}),
    "lomit": ("shapes_local", "attributes", {ReferenceTranslator, ExemplarMaskTranslator, SampleGrid}),
    "tunit": ("shapes_unlabeled", "unlabeled", {ReferenceTranslator, Clusterer, WeightAveraged, SampleGrid}),
}


@pytest.mark.parametrize("name", MODELS)
def test_each_default_model_has_exactly_its_abilities(make_cfg, name):
    data, kind, abilities = MODELS[name]
    cfg = make_cfg(f"model={name}", f"data={data}")
    model = build_model(cfg)
    assert {ability for ability in ABILITIES if isinstance(model, ability)} == abilities
    assert model.data_kind == instantiate(cfg.data, _convert_="all").kind == kind


def lsgan(scores: Tensor, target: float) -> Tensor:
    return (scores - target).pow(2).mean()


class Recolour(TranslationModule):
    """A model no file of the package knows: one 1x1 convolution per direction, an LSGAN objective
    with a 1x1 critic per domain. It declares its abilities by its methods alone."""

    def __init__(self, **spine: object) -> None:
        super().__init__(**(SCHEMA_SPINE | spine))
        self.G_ab, self.G_ba = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
        self.D_a, self.D_b = nn.Conv2d(3, 1, 1), nn.Conv2d(3, 1, 1)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": [*self.G_ab.parameters(), *self.G_ba.parameters()],
            "discriminator": [*self.D_a.parameters(), *self.D_b.parameters()],
        }

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        fake_b, fake_a = self.G_ab(batch["A"]).detach(), self.G_ba(batch["B"]).detach()
        real = lsgan(self.D_b(batch["B"]), 1) + lsgan(self.D_a(batch["A"]), 1)
        fake = lsgan(self.D_b(fake_b), 0) + lsgan(self.D_a(fake_a), 0)
        return real + fake, {"real": real, "fake": fake}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        gan = lsgan(self.D_b(self.G_ab(batch["A"])), 1) + lsgan(self.D_a(self.G_ba(batch["B"])), 1)
        return gan, {"gan": gan}

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        return torch.tanh((self.G_ab if direction == "AtoB" else self.G_ba)(x))


def translate_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        return compose("translate", overrides=list(overrides))


def test_a_new_model_trains_translates_and_is_scored_through_its_abilities_alone(make_cfg, tmp_path):
    adam = partial(torch.optim.Adam, lr=0.01)
    model = Recolour(optimizers={"generator": adam, "discriminator": adam})
    assert {ability for ability in ABILITIES if isinstance(model, ability)} == {Translator, SampleGrid}
    before = model.G_ab.weight.detach().clone()
    datamodule = instantiate(make_cfg("model=cyclegan", "data=shapes_color").data, _convert_="all")
    metrics = SyntheticMetrics(str(tmp_path / "metrics"), every_n_iterations=2, n_images=4)
    grid = ImageGrid(str(tmp_path / "samples"), every_n_iterations=2, n_images=2)
    trainer = pl.Trainer(
        max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", callbacks=[metrics, grid],
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)  # max_steps counts optimizer steps: 2 iterations of D and G
    assert model.iteration == 2 and not torch.equal(model.G_ab.weight, before)
    # scored by the synthetic metrics callback (shapes_color: a Translator's two directions)
    names = {f"{metric}_{d}" for metric in ("content_iou", "domain_acc") for d in ("AtoB", "BtoA")}
    assert set(metrics.latest) == names
    assert all(0 <= value <= 1 for value in metrics.latest.values())
    assert (tmp_path / "metrics" / "metrics.json").is_file()
    assert (tmp_path / "samples" / "rows.txt").read_text().split() == [
        "real_A", "fake_B", "cycle_A", "real_B", "fake_A", "cycle_B"
    ]  # fmt: skip
    # translated by i2i-translate's code: what it asks of the model and how it writes a folder
    model.eval()
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray((torch.rand(32, 32, 3) * 255).to(torch.uint8).numpy()).save(inputs / f"photo{i}.png")
    cfg = translate_config("ckpt_path=unused", f"input_dir={inputs}", "output_dir=unused", "direction=BtoA")
    translation, n_styles = translate_cli.translation_asked(model, cfg, 32)
    output = tmp_path / "out"
    written = translate_cli.translate_folder(translation, inputs, output, 32, 2, model.device, n_styles)
    assert [path.name for path in written] == ["photo0.png", "photo1.png", "photo2.png"]
    image = translate_cli.load_image(inputs / "photo1.png", 32)[None]
    expected = (model.translate(image, "BtoA")[0].clamp(-1, 1) + 1) / 2
    saved = torch.from_numpy(np.array(Image.open(written[1]))).permute(2, 0, 1) / 255
    assert (saved - expected).abs().max() <= 1 / 255 + 1e-6  # PNG rounding
    # and it refuses in one line what the model cannot do
    for key, why in (("n_styles=2", "Recolour is unimodal"), ("class_dir=c", "Recolour is not a few-shot")):
        cfg = translate_config("ckpt_path=u", "input_dir=i", "output_dir=o", key)
        with pytest.raises(ConfigError, match=why):
            translate_cli.translation_asked(model, cfg, 32)


def test_a_model_without_a_direction_needs_its_own_sample_grid():
    class ToClass(TranslationModule):
        def translate_to_class(self, x: Tensor, class_images: Tensor) -> Tensor:
            return x

    model = ToClass(optimizers={}, **SCHEMA_SPINE)
    assert isinstance(model, FewShotTranslator) and not isinstance(model, Translator)
    with pytest.raises(NotImplementedError, match="no direction to translate by: define sample_rows"):
        model.sample_rows({"A": torch.zeros(1, 3, 8, 8)})
