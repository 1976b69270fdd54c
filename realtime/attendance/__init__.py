"""Live roll call, the vie scolaire dashboard and absence notices to guardians."""
