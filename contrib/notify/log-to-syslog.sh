#!/bin/sh
# Log every transition to syslog (journald), tagged "hafm-notify".
#
#   [vrrp_instance.VI_1]
#   notify = "/etc/hafm/notify/log-to-syslog.sh"
#
# hafm calls the generic `notify` command as (keepalived's convention):
#   log-to-syslog.sh INSTANCE|GROUP NAME STATE PRIORITY
# and sets HAFM_PREV_STATE, HAFM_REASON, HAFM_VIPS in the environment.
# Install: owned by root, mode 0755 (hafm refuses anything else).
set -u

kind=$1 name=$2 state=$3 priority=$4
logger -t hafm-notify -p daemon.notice \
    "$kind $name: ${HAFM_PREV_STATE:-?} -> $state (priority $priority, VIPs ${HAFM_VIPS:-none}): ${HAFM_REASON:-}"
