"""i2i's Hydra config tree; importing it registers the typed schema the config files extend."""

from i2i.schema import register

register()
