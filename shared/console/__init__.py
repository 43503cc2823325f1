"""The operator console's web app (``python -m jobs.console``): what each bot is doing and why.

``app`` holds the routes and the guard in front of them, ``pages`` what each page reads
(read-only) from the state DB, the config and files, ``shape`` and ``charts`` the pure
logic that lays it out, ``templates/`` the HTML.
"""

from shared.console.app import create_app

__all__ = ["create_app"]
