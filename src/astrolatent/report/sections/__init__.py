"""The sections of the report, one module per section family (see report.html)."""
