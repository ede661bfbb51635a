"""The command line: thin typer commands over ``flowctl.api``.

Only this package imports typer, and only :mod:`flowctl.cli.output` imports
rich (tables, colour and progress bars, on a terminal).
"""
