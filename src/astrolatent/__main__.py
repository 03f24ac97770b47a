"""``python -m astrolatent`` runs the command line."""

from astrolatent.cli import main

main()
