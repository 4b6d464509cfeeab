"""Command-line interface: a thin layer over the Python API.

Each module in this package named ``cmd_*.py`` defines one subcommand with three names:
``NAME`` (str), ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
``neuroaikit.cli.main`` discovers them, so a capability adds its command without editing a shared file.
"""
