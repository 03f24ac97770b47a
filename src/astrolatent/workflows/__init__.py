"""Workflows: the stages that read runs and stores and write results (the analysis of a spectrum
run, the causal analysis of galaxy runs). They sit above the estimators, training and the galaxy
models, and below the pipeline, the report, the explorer and the CLI."""
