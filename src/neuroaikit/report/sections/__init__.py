"""Report section builders, one module per capability (see :mod:`neuroaikit.report.build`)."""
