"""`python -m tuner.results <verb> ...`: list, show, compare, best, report, retrain."""

from tuner.results.cli import main

main()
