"""The zygote's entry point, run by path in the sandbox's Python (`python -s -P
zygote_boot.py`, see pool/zygote_launch.py): that interpreter's own sys.path is the
jobs' path, and leeward's install is not on it. What the zygote needs from leeward's
install is found module by module instead, by two finders over the directories the
daemon passes in the environment (pool/sandbox_python.py decides them):

- FIRST_ENV: leeward's own packages, ahead of everything: the zygote must speak the
  daemon's internal protocol even when the venv holds another leeward.
- LAST_ENV: leeward's dependencies, after the venv's own finders: a copy in the venv
  wins, so a job never sees leeward's version of a package its venv has.

Runs before anything of leeward can be imported, so it imports only the standard
library, and it is a script rather than a module: `-P` keeps its directory (the
sandbox package) off sys.path.
"""
import os
import sys
from importlib.machinery import PathFinder

FIRST_ENV = "LEEWARD_ZYGOTE_FIRST"
LAST_ENV = "LEEWARD_ZYGOTE_LAST"


class NamedModules:
    """A meta path finder for a fixed set of top-level names, each in its own directory.
    Submodules are found through their package's __path__ as usual."""

    def __init__(self, locations: dict):
        self.locations = locations

    def find_spec(self, name, path=None, target=None):
        directory = self.locations.get(name)
        return PathFinder.find_spec(name, [directory]) if directory else None


def parse_locations(text: str) -> dict:
    """`name=directory` lines, as pool/sandbox_python.py writes them."""
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def install(environ) -> None:
    sys.meta_path.insert(0, NamedModules(parse_locations(environ.get(FIRST_ENV, ""))))
    sys.meta_path.append(NamedModules(parse_locations(environ.get(LAST_ENV, ""))))


if __name__ == "__main__":
    # The entry `python -c` and `-m` have first on the path (here "" for the start-up
    # directory, "/"): each job's workspace layer replaces it with its own.
    sys.path.insert(0, "")
    install(os.environ)
    from leeward_daemon.sandbox import zygote

    sys.exit(zygote.main())
