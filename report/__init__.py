"""Reports built from the metrics layer: the meeting pack and the monthly brief. No Dash imports."""
