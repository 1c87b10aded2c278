"""Exception and warning classes of mujun-geo.

Each class also subclasses a built-in, so ``except ValueError`` keeps working for
callers who do not know this package.
"""

from __future__ import annotations

__all__ = ["CRSError", "MatchWarning", "MujunGeoError", "SchemaError", "ConfigError", "DataWarning"]


class MujunGeoError(Exception):
    """Base class of every error raised on purpose by mujun-geo.

    The CLI turns any ``MujunGeoError`` into a one-paragraph message and exit code 1,
    so its message must say what the user should fix.
    """


class SchemaError(MujunGeoError, ValueError):
    """Input columns are missing, duplicated or of the wrong kind."""


class CRSError(MujunGeoError, ValueError):
    """A layer has no CRS, or two layers that must agree do not."""


class ConfigError(MujunGeoError, ValueError):
    """A configuration file or preset is invalid."""


class MatchWarning(UserWarning):
    """Data problem found while matching enterprises to parcels."""


class DataWarning(UserWarning):
    """Data problem the user can fix (reported, never silently dropped)."""
