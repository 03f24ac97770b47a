"""The outputs layer: what astrolatent writes, where, and how it marks it.

Modules: :mod:`~astrolatent.outputs.marks` (the marker every folder astrolatent creates holds, and the
only way astrolatent removes anything).
"""
