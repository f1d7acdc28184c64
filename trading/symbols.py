"""Trading symbols: a re-export of `nija.symbols`, the one canonical implementation (`BASE-USD`)."""

from nija.symbols import *  # noqa: F403
