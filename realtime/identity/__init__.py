"""Who is asking: users, roles, personal codes, sessions and signed tokens."""
