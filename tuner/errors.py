"""The one exception type for mistakes a user can make in a config or on the command line."""


class ConfigError(Exception):
    """A bad input, reported as one line that names the key and how to fix it.

    The entry point prints it as ``error: <key>: <problem>; <fix>`` and exits with code 2,
    before Ray starts and before anything is written.
    """

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"{key}: {problem}; {fix}" if fix else f"{key}: {problem}")
