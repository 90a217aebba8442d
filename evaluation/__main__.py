"""`python -m evaluation ...`: see evaluation/cli.py."""
from .cli import main

main()
