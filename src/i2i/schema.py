"""The typed schema of the configs: structured configs (dataclasses in Hydra's ConfigStore) that give
the keys of the spine, loss, data and trainer their types, so that a wrong type or a misspelt key is
refused while Hydra composes the config, naming the key the user typed; and the ranges of the values,
checked in one place (`check_config`) before anything is built.

Registered by the config package itself (`conf/__init__.py` calls `register`), so every way of
composing the config (the entry points, `hydra.compose` in tests and notebooks) uses it.

How each group meets its schema (`schema/<group>/<name>` in the ConfigStore):
- loss (`conf/loss/*.yaml`) and data (`conf/data/*.yaml`): each file extends its schema first in its
  defaults list. The loss schemas are derived from the models' own `LossWeights` dataclasses (the
  fields and types live once, in the model file); a data schema per datamodule class.
- the spine of `model`, `trainer` and the root keys of `train.yaml` / `eval.yaml` / `translate.yaml`:
  the schema is merged after the group's YAML, so the node takes the schema's type while keeping the
  keys only some options have (a model's networks, Lightning's `strategy`), and is closed to new keys
  from then on. Merged after, a schema default would replace the YAML's value: only the model spine,
  whose values live nowhere else, has defaults (`ModelSpine`, and `trainer.plugins`: none, as
  Lightning's); the other fields are MISSING and keep the YAML's values. A model YAML therefore
  sets no spine key (tests/test_schema.py checks it); a model whose dynamics need another value states
  it, with its reason, in `conf/spine/<model>.yaml` (merged after the schema); recipes and the command
  line override both.

Not covered: the networks, optimizers and schedulers of `model` (a model's own keys, dozens per model
and renamed as the networks change: typed only by the constructors they reach, their depths and
widths range-checked by the patterns of TRAIN_VALUES), the datasets under `data.domains` and
`data.views` (one class per scenario or folder layout, range-checked by the datasets), callbacks,
loggers and metrics (range-checked by patterns).
"""

import typing
from collections.abc import Iterator
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from fnmatch import fnmatchcase
from typing import Any, Optional  # OmegaConf reads typing.List, not list[...]

from omegaconf import MISSING, DictConfig, OmegaConf

from i2i.errors import ConfigError, ValueRule, check_values

# The name of a range check (a key of i2i.errors.CHECKS) on a schema field, read by `check_config`.
CHECK = "check"


def checked(check: str, default: Any = MISSING) -> Any:
    """A schema field whose value must pass the range check `check` (null passes where it is Optional)."""
    return field(default=default, metadata={CHECK: check})


@dataclass
class TrainConfig:
    """The root keys of `i2i-train` (conf/train.yaml); the groups are typed by their own schemas."""

    task_name: str = MISSING
    tags: list[str] = MISSING
    seed: int = checked("seed")
    ckpt_path: str | None = MISSING
    auto_resume: bool = MISSING
    extend_schedule: str = MISSING
    optimized_metric: str | None = MISSING
    print_config: bool = MISSING


@dataclass
class ModelSpine:
    """The keys every model takes from the spine (i2i.models.base.TranslationModule), with the one
    copy of their defaults; a recipe or the command line overrides them as `model.<key>=...`."""

    _target_: str = MISSING
    gradient_clip_val: float = checked("non-negative", 0.0)
    gradient_clip_algorithm: str = "norm"
    # a NaN/inf loss or gradient: raise (stop, naming it) or skip (drop that step)
    nonfinite: str = "raise"
    # divergence guard: stop when a loss or loss term exceeds this (null: off) ...
    max_loss: float | None = checked("positive", 1.0e6)
    # ... or when the parameter norm of an optimizer's networks does (null: off)
    max_parameter_norm: float | None = checked("positive", 1.0e5)
    channels_last: bool = False


@dataclass
class TrainerConfig:
    """Lightning Trainer keys i2i sets (conf/trainer/default.yaml holds the values)."""

    _target_: str = MISSING
    max_steps: int = checked("positive integer")
    accelerator: str = MISSING
    devices: Any = MISSING  # a count, "auto", or a list of device indices
    num_nodes: int = checked("positive integer")
    precision: Any = MISSING  # Lightning takes 32, "32-true", "bf16-mixed", ...
    log_every_n_steps: int = checked("positive integer")
    enable_checkpointing: bool = MISSING
    use_distributed_sampler: bool = MISSING
    num_sanity_val_steps: int = MISSING
    limit_val_batches: int | float = MISSING
    deterministic: Any = MISSING  # true, false or "warn"
    default_root_dir: str = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING
    # Lightning's precision or environment plugins (configs with _target_); the one default here, as
    # Lightning's: merged after conf/trainer, it would replace a value set there
    plugins: Any = None


@dataclass
class DataConfig:
    """The keys of every datamodule (conf/data/*.yaml); `domains` is the dataset of its scenario or layout."""

    _target_: str = MISSING
    image_size: int = checked("positive integer")
    batch_size: int = checked("positive integer")
    num_workers: int = checked("count")
    seed: int = checked("seed")
    domains: Any = MISSING


@dataclass
class UnpairedDataConfig(DataConfig):
    """i2i.data.datamodule.UnpairedDataModule."""

    # the direction a one-sided model (CUT) learns: BtoA swaps the domains of the training pairs
    direction: str = "AtoB"
    # the rows of a batch's object boxes (i2i.data.boxes), for data with boxes; null: data without
    max_instances: Optional[int] = checked("positive integer", None)  # noqa: UP045 (OmegaConf)


@dataclass
class FewShotDataConfig(DataConfig):
    """i2i.data.fewshot.FewShotDataModule."""

    num_train_classes: int = checked("positive integer")
    train_shots: int = checked("positive integer")
    test_shots: int = checked("positive integer")
    distinct_classes: bool = MISSING


@dataclass
class AttributeDataConfig(DataConfig):
    """i2i.data.attributes.AttributeDataModule."""

    selected_attrs: list[str] = MISSING
    pairing: str = MISSING


@dataclass
class UnlabeledDataConfig(DataConfig):
    """i2i.data.unlabeled.UnlabeledDataModule."""

    views: Any = MISSING


@dataclass
class TranslateConfig:
    """The keys of `i2i-translate` (conf/translate.yaml)."""

    ckpt_path: str = MISSING
    input_dir: str = MISSING
    output_dir: str = MISSING
    direction: str = MISSING
    class_dir: str | None = MISSING
    k: int | None = checked("positive integer")
    image_size: int | None = checked("positive integer")
    batch_size: int = checked("positive integer")
    device: str = MISSING
    overwrite: bool = MISSING
    n_styles: int | None = checked("positive integer")
    style_seed: int | None = checked("seed")
    reference: str | None = MISSING
    save_attention: bool = MISSING
    exemplar: str | None = MISSING
    input_mask: str | None = MISSING
    exemplar_mask: str | None = MISSING


@dataclass
class EvalConfig:
    """The root keys of `i2i-eval` (conf/eval.yaml)."""

    ckpt_path: str | None = MISSING
    fake_dir: str | None = MISSING
    real_dir: str | None = MISSING
    output: str | None = MISSING
    n_images: int | None = checked("positive integer")
    seed: int = checked("seed")
    device: str = MISSING
    checkpoints: str = MISSING  # given | all (i2i.evaluate.CHECKPOINT_SELECTIONS)


R = ValueRule
# Ranges of the keys no schema types (a model's networks and optimizers, the datasets, callbacks,
# metrics); `*` matches any characters, dots included.
TRAIN_VALUES = (
    R("data.domains.load_size", "positive integer"),
    R("data.domains.crop_size", "positive integer"),
    R("callbacks.*.every_n_iterations", "positive integer"),
    R("callbacks.*.n_images", "positive integer"),
    R("callbacks.checkpoint.keep_every", "positive integer", optional=True),
    R("model.optimizers.*.lr", "non-negative"),
    R("model.optimizers.*.weight_decay", "non-negative"),
    R("model.pool_size", "count"),
    # network depths (a negative one would silently build no layers) and widths
    R("model.n_*", "count"),
    R("model.*.n_*", "count"),
    R("model.*_blocks", "count"),
    R("model.*.num_scales", "positive integer"),
    R("model.*.dim", "positive integer"),
    R("model.*_dim", "positive integer"),
    R("model.*.nf", "positive integer"),
    R("model.*.ngf", "positive integer"),
    R("model.*.ndf", "positive integer"),
)
TRANSLATE_VALUES: tuple[ValueRule, ...] = ()  # every key of i2i-translate is in TranslateConfig
EVAL_VALUES = (
    R("metrics.batch_size", "positive integer"),
    R("metrics.kid_subsets", "positive integer"),
    R("metrics.kid_max_subset_size", "positive integer"),
    R("metrics.lpips_inputs", "positive integer"),
    R("metrics.lpips_styles", "positive integer"),
    R("metrics.kid_seed", "seed"),
)


def flatten(config: typing.Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, typing.Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _typed_nodes(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig, type]]:
    """(dotted prefix, node, schema class) of every node of `node` typed by a schema, itself included."""
    schema = OmegaConf.get_type(node)
    if is_dataclass(schema):
        yield prefix, node, schema
    for key in node.keys():
        if OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
            continue  # an interpolated node is checked where it is written
        if isinstance(child := node[key], DictConfig):
            yield from _typed_nodes(child, f"{prefix}{key}.")


# The schemas whose nodes hold their fields only (a `+key=...` from the command line is refused).
CLOSED: set[type] = set()


def schema_rules(cfg: DictConfig) -> tuple[ValueRule, ...]:
    """The range checks of the schema fields in `cfg`, as rules on their dotted keys; refuses a key a
    closed schema lacks (added with `+key=...`, which Hydra lets through)."""
    rules = []
    for prefix, node, schema in _typed_nodes(cfg):
        names = {f.name for f in fields(schema)}
        if schema in CLOSED:
            for key in node.keys():
                if key not in names:
                    known = ", ".join(sorted(name for name in names if name != "_target_"))
                    allowed = f"{prefix[:-1]} has no such key (its keys: {known})"
                    raise ConfigError(f"{prefix}{key}", node[key], allowed)
        for f in fields(schema):
            if CHECK in f.metadata and f.name in node:
                rules.append(R(f"{prefix}{f.name}", f.metadata[CHECK], optional=_is_optional(f.type)))
    return tuple(rules)


def check_config(cfg: DictConfig, rules: tuple[ValueRule, ...]) -> None:
    """Check the ranges of `cfg`'s values: those its schemas name and those `rules` name (resolving
    only those); one ConfigError naming the first wrong key. A required value left unset (???) is
    reported as missing."""
    rules = schema_rules(cfg) + rules
    keys = flatten(OmegaConf.to_container(cfg, resolve=False))
    matching = [key for key in keys if any(fnmatchcase(key, rule.pattern) for rule in rules)]
    check_values({key: OmegaConf.select(cfg, key, throw_on_missing=True) for key in matching}, rules)


def _is_optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def loss_schema(weights: type) -> type:
    """The structured config of a model's loss-weight dataclass: its fields and types, and `_target_`."""
    hints = typing.get_type_hints(weights)
    schema_fields: list[tuple[str, Any, Any]] = [("_target_", str, field(default=MISSING))]
    for f in fields(weights):
        annotation = hints[f.name]
        if _is_optional(annotation):  # OmegaConf reads Optional[X], not X | None
            annotation = Optional[next(a for a in typing.get_args(annotation) if a is not type(None))]  # noqa: UP045 (OmegaConf)
        default = MISSING if f.default is NO_DEFAULT else f.default
        schema_fields.append((f.name, annotation, field(default=default)))
    return make_dataclass(f"{weights.__name__}Config", schema_fields)


def loss_weight_classes() -> list[type]:
    """Every model's loss-weight dataclass (imported here, not at module level: the models need torch)."""
    from i2i.models.cut import CUTLoss
    from i2i.models.cyclegan import CycleGANLoss
    from i2i.models.drit import DRITLoss
    from i2i.models.funit import FUNITLoss
    from i2i.models.lomit import LOMITLoss
    from i2i.models.munit import MUNITLoss
    from i2i.models.tunit import TUNITLoss
    from i2i.models.ugatit import UGATITLoss
    from i2i.models.unit import UNITLoss

    return [CycleGANLoss, UNITLoss, MUNITLoss, UGATITLoss, FUNITLoss, LOMITLoss, TUNITLoss, CUTLoss, DRITLoss]


DATA_SCHEMAS = {
    "unpaired": UnpairedDataConfig,
    "fewshot": FewShotDataConfig,
    "attributes": AttributeDataConfig,
    "unlabeled": UnlabeledDataConfig,
}


def register() -> None:
    """Store every schema in Hydra's ConfigStore (group `schema`), where the config files name them."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="schema", name="train", node=TrainConfig)
    store.store(group="schema", name="translate", node=TranslateConfig)
    store.store(group="schema", name="eval", node=EvalConfig)
    store.store(group="schema", name="model", node=ModelSpine)
    store.store(group="schema", name="trainer", node=TrainerConfig)
    for name, schema in DATA_SCHEMAS.items():
        store.store(group="schema/data", name=name, node=schema)
        CLOSED.add(schema)
    for weights in loss_weight_classes():
        schema = loss_schema(weights)
        store.store(group="schema/loss", name=weights.__name__, node=schema)
        CLOSED.add(schema)
