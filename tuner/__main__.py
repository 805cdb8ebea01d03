"""`python -m tuner [overrides]`: one tuning run (or one per combination with --multirun)."""

from tuner.main import main

main()
