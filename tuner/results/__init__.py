"""Results: the folder a run leaves (``folder``), its Pareto front (``pareto``), its HTML report
(``report``), and the ``python -m tuner.results`` command that reads them back (``cli``)."""

from tuner.results.folder import best_config, best_trial, collect_trials, leaderboard, write_results

__all__ = ["best_config", "best_trial", "collect_trials", "leaderboard", "write_results"]
