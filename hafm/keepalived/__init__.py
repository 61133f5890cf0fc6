"""keepalived compatibility: a keepalived.conf parser and ``hafm convert``."""
