"""What every training in astrolatent shares (the spectrum VAE and the galaxy estimators).

* :mod:`~astrolatent.runtime.config`: the configuration sections both trainings have
  (optimiser, trainer budget and devices); each domain subclasses them with its own
  defaults. Light: imports neither torch nor Lightning.
* :mod:`~astrolatent.runtime.checkpoint`: checkpoint and model files with a format
  version, and the command that rebuilds a stale one.
* :mod:`~astrolatent.runtime.trainer`: the Lightning trainer of a run (hardware checks,
  launchers, early stopping, why it stopped), torch's thread and determinism settings,
  Lightning kept quiet about what does not apply, and a new model's seeded weights.
* :mod:`~astrolatent.runtime.run`: a run's ``config.yaml`` and ``train_summary.json``.

Runs themselves (folder marks, atomic writes, file names) are the outputs layer's; the two
Lightning modules, their data and their loops are their packages' own.
"""
