"""`preset=tiny` trains every part of a model within its default run (CPU minutes)."""

from i2i.train import build_model


def test_tiny_tunit_trains_its_generator_for_most_of_the_default_run(make_cfg):
    cfg = make_cfg("model=tunit", "data=shapes_unlabeled", fast=False)
    max_steps = cfg.trainer.max_steps
    assert cfg.model.separated <= max_steps // 4  # the guide-only phase is a short start
    assert cfg.data.batch_size <= 8  # a GAN iteration at the official 32 takes ~4x as long on a CPU
    model = build_model(cfg)
    assert [update.name for update in model.updates(cfg.model.separated)] == ["c", "d", "g"]
    assert [update.name for update in model.updates(max_steps - 1)] == ["c", "d", "g"]


def test_paper_tunit_keeps_the_official_schedule(make_cfg):
    cfg = make_cfg("model=tunit", "data=shapes_unlabeled", "preset=paper", fast=False)
    assert cfg.model.separated == 65000
    assert cfg.model.reference_guide == "average"
    assert cfg.model.optimizers.guide.lr == 1.0e-4
