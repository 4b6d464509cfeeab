"""``python -m neuroaikit ...`` (and ``torchrun -m neuroaikit ...``): the command line."""

import sys

from .cli.main import main

sys.exit(main())
