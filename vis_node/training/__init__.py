"""Training of the perception model: YAML config, data sources, copy-paste, trainer, CLI.

``vsis train CONFIG`` (see :mod:`vis_node.training.cli`) runs
:func:`vis_node.training.trainer.train` on a :class:`vis_node.training.config.TrainConfig`.
"""
