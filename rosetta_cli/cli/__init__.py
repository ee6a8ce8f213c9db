"""Thin CLI modules, one per subcommand; see app.py."""
