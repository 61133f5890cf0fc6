"""hafm's built-in plugins (installed as the package ``hafm_plugins``).

Each module here is an ordinary pluggy plugin registered by name from
:data:`hafm.plugin_manager.DEFAULT_PLUGINS`, through the same hooks a
third-party plugin uses.
"""
