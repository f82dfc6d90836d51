"""Every op module; importing this package registers them all."""

from headwater.transform.ops import (
    aggregate,
    columns,
    combine,
    dates,
    numbers,
    privacy,
    rows,
    strings,
    structure,
)

__all__ = ["aggregate", "columns", "combine", "dates", "numbers", "privacy", "rows", "strings", "structure"]
