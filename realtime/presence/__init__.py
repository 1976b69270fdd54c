"""Presence: who is online per school, class and board, across every process and node."""
