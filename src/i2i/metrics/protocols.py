"""KID, FID and LPIPS-diversity protocols on real-image features (DESIGN §7, research/results.md §8).

Every score is torchmetrics' estimator; what this module adds is the protocol around it: which
images are compared, how many, how KID subsets are drawn, and a record of all of it beside each
number (`Score.protocol`), because published numbers differ exactly in these choices.

- KID x100 (U-GAT-IT's table): `kid_<direction>` compares the translations with the real test
  images of the target domain ("target KID"). The reported std is torchmetrics' std over random
  subsets; U-GAT-IT's "±" is a standard error over blocks of at most 10 images, so stds are not
  comparable with the paper. `kid_variant: mean` adds the paper code's `mean_kid_<direction>`,
  (0.02 KID(target, fake) + 0.98 KID(source, fake)) / 2 (`taki0112/GAN_Metrics-Tensorflow`), which
  the U-GAT-IT numbers most likely use (research/results.md §1c, §8).
- Subset size follows clean-fid: min(metrics.kid_max_subset_size, #real, #fake); subsets are drawn
  from a fixed seed, so a score is reproducible and equal under DDP and in one process.
- FID per direction (UNIT/MUNIT, CUT): translations of the test inputs vs the target test images.
- The Inception input (`metrics.protocol`): torch-fidelity's TF1-compatible resize (torchmetrics'
  and torch-fidelity's FIDs) or pytorch-fid's torch bilinear resize (CUT's FIDs); they differ at
  every image size but 299 px (metrics/extractors.py), so each score's protocol names its resize.
- LPIPS diversity (MUNIT, after BicycleGAN): for N test inputs, M outputs with random styles each;
  the mean LPIPS over the M(M-1)/2 output pairs of every input. Multimodal models only.
- Per-class (FUNIT's mFID; TUNIT's mFID over ground-truth domains; LOMIT per attribute vector):
  `per_class_scores` takes (class, translations, real images) triples (`metrics.scoring` makes them).

Images are quantised to uint8 before feature extraction, as if saved to PNG and read back, the
way the published numbers were computed from image files. Real features are extracted once; the
metric states keep them across `reset()` (`reset_real_features=False`).
"""

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from i2i.abilities import StyleTranslator, Translator, translation_directions
from i2i.errors import ConfigError, check_choice, check_positive
from i2i.metrics.extractors import (
    EXTRACTORS,
    LPIPS_BACKBONE_FILES,
    PROTOCOLS,
    Extractor,
    LPIPSNetwork,
    build_extractor,
    build_lpips,
    resize_description,
)
from i2i.types import SOURCE_TARGET

METRICS = ("kid", "fid", "lpips_diversity")
KID_VARIANTS = ("target", "mean")
MEAN_KID_SOURCE_WEIGHT = 0.98  # GAN_Metrics-Tensorflow's source_alpha; the target weight is 0.02


@dataclass(frozen=True)
class MetricSettings:
    """The `metrics` config group: which networks, which scores, which protocol parameters."""

    extractor: str
    inception_weights: str | None
    lpips_net: str
    lpips_weights: str | None
    allow_download: bool
    allow_unpublished_weights: bool
    antialias: bool
    names: tuple[str, ...]
    kid_variant: str
    kid_subsets: int
    kid_max_subset_size: int
    kid_seed: int
    lpips_inputs: int
    lpips_styles: int
    batch_size: int
    # a default, as the YAML's: metrics configs stored in runs before the key existed read as computed
    protocol: str = "torch_fidelity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        check_choice("metrics.extractor", self.extractor, EXTRACTORS)
        check_choice("metrics.protocol", self.protocol, PROTOCOLS)
        if self.protocol == "pytorch_fid" and self.antialias:
            raise ConfigError(
                "metrics.antialias",
                self.antialias,
                "metrics.protocol=pytorch_fid resizes as pytorch-fid does: leave antialias=false",
            )
        check_choice("metrics.lpips_net", self.lpips_net, LPIPS_BACKBONE_FILES)
        check_choice("metrics.kid_variant", self.kid_variant, KID_VARIANTS)
        for name in self.names:
            check_choice("metrics.names", name, METRICS)
        for key in ("kid_subsets", "kid_max_subset_size", "lpips_inputs", "batch_size"):
            check_positive(f"metrics.{key}", getattr(self, key))
        if self.kid_max_subset_size < 2:
            raise ConfigError("metrics.kid_max_subset_size", self.kid_max_subset_size, "must be >= 2")
        if self.lpips_styles < 2:
            raise ConfigError(
                "metrics.lpips_styles", self.lpips_styles, "must be >= 2 (LPIPS compares pairs)"
            )


@dataclass(frozen=True)
class Score:
    """One number and how it was obtained. `subset` is a direction (AtoB) or a class name."""

    name: str
    subset: str | None
    value: float
    std: float | None
    protocol: str
    n_images: int
    extractor: str
    weights_sha256: str | None = None

    @property
    def metric(self) -> str:
        return f"{self.name}_{self.subset}" if self.subset else self.name

    def logs(self) -> dict[str, float]:
        """Scalar logger keys: `<name>_<subset>` and, with a std, `<name>_std_<subset>`."""
        values = {self.metric: self.value}
        if self.std is not None:
            values[f"{self.name}_std_{self.subset}" if self.subset else f"{self.name}_std"] = self.std
        return values

    def record(self, **extra: Any) -> dict[str, Any]:
        """The eval.json row of this score."""
        row = {"metric": self.metric, **asdict(self), **extra}
        del row["name"], row["subset"]
        return row


def to_uint8(images: Tensor) -> Tensor:
    """Model outputs in [-1, 1] to uint8, rounded as `torchvision.utils.save_image` writes a PNG."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


class _Precomputed(nn.Module):
    """The metrics receive features, not images, so one extractor pass serves both FID and KID."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


class SubsetKID(KernelInceptionDistance):
    """torchmetrics' KID with clean-fid's subset size, min(max_subset_size, #real, #fake), and
    subsets drawn from a fixed seed (the global RNG is left untouched)."""

    def __init__(self, num_features: int, subsets: int, max_subset_size: int, seed: int) -> None:
        with warnings.catch_warnings():
            # "will save all extracted features in buffer": by design, a test subset's features
            warnings.filterwarnings("ignore", message=".*save all extracted features.*")
            super().__init__(
                feature=_Precomputed(num_features),
                subsets=subsets,
                subset_size=max_subset_size,
                reset_real_features=False,
            )
        self.max_subset_size = max_subset_size
        self.seed = seed

    def compute(self) -> tuple[Tensor, Tensor]:
        # runs after torchmetrics has gathered the states of every rank
        available = min(sum(len(f) for f in self.real_features), sum(len(f) for f in self.fake_features))
        if available < 2:
            raise ValueError(f"KID needs at least 2 real and 2 generated images, got {available}")
        self.subset_size = min(self.max_subset_size, available)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return super().compute()


class DistributionMetrics(nn.Module):
    """FID and KID of generated images against one real set (plus KID against the source set for
    mean_kid), on features; the real statistics are kept across `reset()`."""

    def __init__(self, settings: MetricSettings, num_features: int) -> None:
        super().__init__()
        self.settings = settings
        names = settings.names
        self.fid = None
        if "fid" in names:
            self.fid = FrechetInceptionDistance(feature=_Precomputed(num_features), reset_real_features=False)
        kid = lambda: SubsetKID(
            num_features, settings.kid_subsets, settings.kid_max_subset_size, settings.kid_seed
        )
        self.kid = kid() if "kid" in names else None
        self.kid_source = kid() if "kid" in names and settings.kid_variant == "mean" else None
        self.has_real = False

    def update_real(self, target: Tensor, source: Tensor | None = None) -> None:
        for metric in (self.fid, self.kid):
            if metric is not None:
                metric.update(target, real=True)
        if self.kid_source is not None and source is not None:
            self.kid_source.update(source, real=True)

    def update_fake(self, features: Tensor) -> None:
        for metric in (self.fid, self.kid, self.kid_source):
            if metric is not None:
                metric.update(features, real=False)

    def compute(self) -> dict[str, tuple[float, float | None, int]]:
        """{name: (value, std, kid subset size or 0)}; KID values x100."""
        results: dict[str, tuple[float, float | None, int]] = {}
        if self.fid is not None:
            results["fid"] = (float(self.fid.compute()), None, 0)
        if self.kid is not None:
            mean, std = self.kid.compute()
            results["kid"] = (100 * float(mean), 100 * float(std), self.kid.subset_size)
        if self.kid_source is not None:
            source_mean, source_std = self.kid_source.compute()
            w = MEAN_KID_SOURCE_WEIGHT
            kid_mean, kid_std, size = results["kid"]
            results["mean_kid"] = (
                ((1 - w) * kid_mean + w * 100 * float(source_mean)) / 2,
                ((1 - w) * kid_std + w * 100 * float(source_std)) / 2,
                size,
            )
        return results

    def reset(self) -> None:
        for metric in (self.fid, self.kid, self.kid_source):
            if metric is not None:
                metric.reset()


def _protocol(
    name: str, settings: MetricSettings, n_fake: int, n_real: int, kid_size: int, where: str
) -> str:
    kid = (
        f"x100, torchmetrics polynomial-kernel MMD (degree 3, coef 1), mean and std over "
        f"{settings.kid_subsets} subsets of {kid_size} images (seed {settings.kid_seed})"
    )
    texts = {
        "fid": f"FID (torchmetrics): {n_fake} translations vs {n_real} real images of {where}",
        "kid": f"KID {kid}: {n_fake} translations vs {n_real} real images of {where}",
        "mean_kid": f"U-GAT-IT mean_KID (0.02 KID(target) + 0.98 KID(source)) / 2, each KID {kid}; "
        f"{n_fake} translations vs {n_real} real images of {where} and the inputs' domain",
    }
    if settings.extractor == "inception":
        return f"{texts[name]}; {resize_description(settings.protocol, settings.antialias)}"
    return texts[name]


def _suffix(name: str, proxy: bool) -> str:
    return f"{name}_proxy" if proxy else name


def features_of(extractor: Extractor, images: Tensor, batch_size: int, device: torch.device) -> Tensor:
    """Extractor features of images in [-1, 1], in batches, on `device`."""
    return torch.cat(
        [
            extractor(to_uint8(images[i : i + batch_size].to(device)))
            for i in range(0, len(images), batch_size)
        ]
    )


def shard(images: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's contiguous part of a fixed image set. Contiguous parts gather back in the
    original order, so KID subsets (drawn by index) are the same as in one process."""
    return torch.tensor_split(images, world_size)[rank]


@dataclass
class Evaluator:
    """Scores a model's translations of fixed test images, per direction, with `settings`.

    Holds the feature extractor, the LPIPS network and the metric states; keep it in a callback or
    a script, never on the LightningModule (the Inception net would add ~91 MB to every checkpoint).
    Under DDP every rank calls `evaluate` with the same images and scores its own shard; torchmetrics
    gathers the states on compute, so every rank returns the scores of the whole set.
    """

    settings: MetricSettings
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    extractor: Extractor | None = None
    lpips: LPIPSNetwork | None = None
    distributions: dict[str, DistributionMetrics] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.settings
        if self.extractor is None and {"kid", "fid"} & set(s.names):
            self.extractor = build_extractor(
                s.extractor,
                s.inception_weights,
                s.allow_download,
                s.antialias,
                s.allow_unpublished_weights,
                s.protocol,
            )
        if self.extractor is not None:
            self.extractor.network.to(self.device)

    def _distribution(self, key: str) -> DistributionMetrics:
        if key not in self.distributions:
            self.distributions[key] = DistributionMetrics(self.settings, self.extractor.num_features).to(
                self.device
            )
        return self.distributions[key]

    def _lpips(self) -> LPIPSNetwork:
        if self.lpips is None:
            s = self.settings
            self.lpips = build_lpips(
                s.extractor, s.lpips_net, s.lpips_weights, s.allow_download, s.allow_unpublished_weights
            )
            self.lpips.metric.to(self.device)
        return self.lpips

    @torch.no_grad()
    def evaluate(
        self, model: Translator, images: Mapping[str, Tensor], rank: int = 0, world_size: int = 1
    ) -> list[Score]:
        """Every configured score of `model` in both directions on `images` {"A": ..., "B": ...}
        (the whole fixed set; each rank uses its shard)."""
        scores = []
        for direction in translation_directions(model):
            source, target = SOURCE_TARGET[direction]
            inputs = images[source]
            if self.extractor is not None:
                scores += self.distribution_scores(model, direction, inputs, images[target], rank, world_size)
            if "lpips_diversity" in self.settings.names and isinstance(model, StyleTranslator):
                scores.append(self.lpips_diversity(model, direction, inputs, rank, world_size))
        return scores

    def distribution_scores(
        self, model: Translator, direction: str, inputs: Tensor, reals: Tensor, rank: int, world_size: int
    ) -> list[Score]:
        """FID/KID (and mean_kid) of `model`'s translations of `inputs` against `reals`."""
        s, extractor = self.settings, self.extractor
        metrics = self._distribution(direction)
        if not metrics.has_real:
            target = features_of(extractor, shard(reals, rank, world_size), s.batch_size, self.device)
            source = None
            if metrics.kid_source is not None:
                source = features_of(extractor, shard(inputs, rank, world_size), s.batch_size, self.device)
            metrics.update_real(target, source)
            metrics.has_real = True
        mine = shard(inputs, rank, world_size)
        for start in range(0, len(mine), s.batch_size):
            batch = mine[start : start + s.batch_size].to(model.device)
            metrics.update_fake(extractor(to_uint8(model.translate(batch, direction)).to(self.device)))
        results = metrics.compute()
        metrics.reset()
        where = f"domain {SOURCE_TARGET[direction][1]}"
        return [
            Score(
                _suffix(name, extractor.proxy),
                direction,
                value,
                std,
                _protocol(name, s, len(inputs), len(reals), size, where),
                len(inputs),
                extractor.name,
                extractor.weights_sha256,
            )
            for name, (value, std, size) in results.items()
        ]

    def lpips_diversity(
        self, model: StyleTranslator, direction: str, inputs: Tensor, rank: int, world_size: int
    ) -> Score:
        """MUNIT's diversity score: mean LPIPS over the output pairs of each of N inputs."""
        s, lpips = self.settings, self._lpips()
        count, styles = min(s.lpips_inputs, len(inputs)), s.lpips_styles
        mine = shard(inputs[:count], rank, world_size)
        for start in range(0, len(mine), s.batch_size):
            batch = mine[start : start + s.batch_size].to(model.device)
            outputs = model.translate_styles(batch, direction, styles).float().clamp(-1, 1).to(self.device)
            for i in range(styles):
                for j in range(i + 1, styles):
                    lpips.metric.update(outputs[:, i], outputs[:, j])
        value = float(lpips.metric.compute())
        lpips.metric.reset()
        pairs = styles * (styles - 1) // 2
        protocol = (
            f"MUNIT diversity: mean LPIPS ({s.lpips_net}, torchmetrics) over the {pairs} pairs of "
            f"{styles} random-style outputs of each of {count} test inputs"
        )
        return Score(
            _suffix("lpips_diversity", lpips.proxy), direction, value, None, protocol, count, lpips.name,
            lpips.weights_sha256,
        )  # fmt: skip


def per_class_scores(
    classes: Iterable[tuple[str, Tensor, Tensor]],
    settings: MetricSettings,
    extractor: Extractor,
    *,
    paper: str = "FUNIT",
    unit: str = "class",
    rank: int = 0,
    world_size: int = 1,
) -> list[Score]:
    """FUNIT's few-shot protocol: FID/KID per target class, then their mean over classes.

    `classes` yields (class name, translations into that class, real images of that class), images
    in [-1, 1], whole sets (FUNIT: the real images are the class's test images, the translations
    those of the content images given K examples of the class). Returns per-class scores
    (`fid_<class>`, `kid_<class>`) and the means `mfid` / `mkid` (std = spread over classes).
    `paper` and `unit` name the protocol in the records (TUNIT's mFID is per "domain"). Under DDP
    every rank passes the same sets and extracts the features of its shard; the states are gathered,
    so every rank gets the scores of the whole sets.
    """
    device = next(extractor.network.parameters(), torch.empty(0)).device
    target_only = replace(settings, kid_variant="target")  # mean_kid needs a source domain
    per_class: dict[str, dict[str, float]] = {}
    scores = []
    features = lambda images: features_of(
        extractor, shard(images, rank, world_size), settings.batch_size, device
    )
    for name, generated, real in classes:
        metrics = DistributionMetrics(target_only, extractor.num_features).to(device)
        metrics.update_real(features(real))
        metrics.update_fake(features(generated))
        where = f"{unit} {name}"
        for metric, (value, std, size) in metrics.compute().items():
            per_class.setdefault(metric, {})[name] = value
            protocol = _protocol(metric, settings, len(generated), len(real), size, where)
            scores.append(
                Score(
                    _suffix(metric, extractor.proxy),
                    name,
                    value,
                    std,
                    protocol,
                    len(generated),
                    extractor.name,
                    extractor.weights_sha256,
                )  # fmt: skip
            )
    units = f"{unit}es" if unit.endswith("s") else f"{unit}s"
    for metric, values in per_class.items():
        mean = torch.tensor(list(values.values()), dtype=torch.float64)
        protocol = (
            f"{paper} m{metric.upper()}: {metric} per target {unit} (see the per-{unit} rows), "
            f"mean over {len(values)} {units}"
        )
        std = float(mean.std(unbiased=False))
        scores.append(
            Score(
                _suffix(f"m{metric}", extractor.proxy),
                None,
                float(mean.mean()),
                std,
                protocol,
                sum(s.n_images for s in scores if s.name == _suffix(metric, extractor.proxy)),
                extractor.name,
                extractor.weights_sha256,
            )  # fmt: skip
        )
    return scores


def small_sample_warning(
    metric: str, n_fake: int, n_real: int, num_features: int, kid_subset_size: int
) -> str | None:
    """Why a FID or KID of so few images must be read with care; None when the counts suffice.

    FID fits a Gaussian to each set: its covariance has num_features x num_features entries but rank
    at most N - 1, so with N < num_features (2048 for Inception) it is singular, FID is biased upward
    and its value depends on N itself. KID is unbiased at any N but noisy, and with N below the
    protocol's `kid_max_subset_size` its subsets overlap so much (all N images when both sets have
    N) that their std understates the noise."""
    fewest = min(n_fake, n_real)
    if metric.startswith("fid") and fewest < num_features:
        return (
            f"FID of {fewest} images (fewer than the {num_features} feature dimensions): the covariance "
            f"estimates are rank-deficient, so FID is biased upward and depends on the number of images; "
            f"compare only FIDs of equal N, or use KID"
        )
    if metric.startswith("kid") and fewest < kid_subset_size:
        return (
            f"KID of {fewest} images (fewer than the protocol's subsets of {kid_subset_size}): unbiased but "
            f"noisy; it varies between samples of this size more than its std over subsets, drawn from "
            f"these same images, shows"
        )
    return None


def feature_set_scores(
    settings: MetricSettings, extractor: Extractor, fake: Tensor, real: Tensor, where: str
) -> list[Score]:
    """FID/KID of one set of generated-image features against one set of real-image features, with
    the protocols of `Evaluator` (target KID x100 over seeded subsets); each score notes `where`."""
    metrics = DistributionMetrics(replace(settings, kid_variant="target"), extractor.num_features).to(
        fake.device
    )
    metrics.update_real(real)
    metrics.update_fake(fake)
    return [
        Score(
            _suffix(name, extractor.proxy),
            None,
            value,
            std,
            _protocol(name, settings, len(fake), len(real), size, where),
            len(fake),
            extractor.name,
            extractor.weights_sha256,
        )  # fmt: skip
        for name, (value, std, size) in metrics.compute().items()
    ]
