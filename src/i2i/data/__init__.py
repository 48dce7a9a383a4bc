"""Datasets: procedural synthetic scenarios and folders of real images, behind one datamodule."""
