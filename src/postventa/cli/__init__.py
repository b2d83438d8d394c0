"""The `postventa` command: typer commands that compose the rest. No rules, no SQL."""
