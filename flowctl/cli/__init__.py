"""The command line: thin typer commands over ``flowctl.api``.

Only this package and ``flowctl.lint.reporters`` import typer or rich.
"""
