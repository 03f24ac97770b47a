"""Spectra from archive files into a chunked store: readers -> preprocess -> store -> datasets."""
