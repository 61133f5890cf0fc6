"""Names of the timers an instance asks its driver to arm."""

import enum


class Timer(enum.Enum):
    ADVERT = "advert"  # Master: send the next advertisement
    MASTER_DOWN = "master_down"  # Backup: the Master is presumed dead
    GARP_DELAY = "garp_delay"  # Master: second gratuitous ARP burst (garp_master_delay)
    GARP_REFRESH = "garp_refresh"  # Master: periodic gratuitous ARP (garp_master_refresh)
