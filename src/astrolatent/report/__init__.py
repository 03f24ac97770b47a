"""Figures (pure functions of results) and the HTML report."""
