"""The spine's keys with the defaults the config schema gives every model (`i2i.schema.ModelSpine`),
for models the tests build without composing a config."""

from dataclasses import fields

from i2i.schema import ModelSpine

SCHEMA_SPINE = {f.name: f.default for f in fields(ModelSpine) if f.name != "_target_"} | {"scheduler": None}
# the spine with both divergence bounds off, for tests of what the other guards do alone
UNBOUNDED_SPINE = SCHEMA_SPINE | {"max_loss": None, "max_parameter_norm": None}
