"""Results folders: ``write`` writes one (and the printed leaderboard), ``read`` reads them back,
``pareto`` finds the Pareto front, ``report`` renders report.html, ``tables`` formats text, and
``cli`` is ``python -m tuner.results``. Nothing here needs Ray, W&B or Hydra."""
