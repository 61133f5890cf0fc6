"""Configuration: the frozen model, the key schema, the TOML loader and ``check-config``."""
