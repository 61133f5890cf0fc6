#!/bin/sh
# Restart Tomcat when this node becomes MASTER, so it starts serving on the VIP at once.
#
#   [vrrp_instance.VI_1]
#   notify_master = "/etc/hafm/notify/tomcat-on-master.sh tomcat10"
#
# The argument is the systemd unit (default tomcat10). The script runs in hafm's
# notify queue for VI_1: the next transition's scripts wait for it, so it should
# return quickly. `systemctl restart` waits for the unit to start; hafm kills a
# notify script after 30 s, so keep the unit's start-up below that (or add
# --no-block to return at once and let systemd finish the job).
# Start services through systemctl, never in the background from this script:
# systemd, not hafm, must own Tomcat.
# Install: owned by root, mode 0755 (hafm refuses anything else).
set -eu

unit=${1:-tomcat10}
# A notify_master command only runs on MASTER; the check guards against reuse as `notify`.
[ "${HAFM_STATE:-}" = MASTER ] || exit 0
echo "restarting $unit (${HAFM_INSTANCE:-?} became MASTER: ${HAFM_REASON:-})"
exec systemctl restart "$unit"
