"""`python -m jaxcalc` is the `jaxcalc` command."""

from jaxcalc.cli import command

command()
