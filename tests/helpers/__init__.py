"""What the tests share that is not a fixture: trainables and data for tiny runs, scenarios run
in their own process, the strict reader of W&B's offline files."""
