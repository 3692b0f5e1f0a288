"""`python -m jaxcalc` is the `jaxcalc` command."""

import sys

from jaxcalc.cli import main

sys.exit(main())
