"""Stream processors: `type: streaming` specs applied to micro-batches of a broker's entries."""
