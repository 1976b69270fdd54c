"""The académie's directory feed (AAF): reading a full snapshot and applying it."""
