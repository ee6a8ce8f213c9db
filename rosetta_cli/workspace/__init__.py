"""Workspaces: roles → store paths in rosetta.toml, short commands, and `rosetta status`."""
