"""The command line: thin typer commands over ``flowctl.api``.

Only this package and ``flowctl.report`` import typer or rich.
"""
