#!/bin/sh
# POST every transition as JSON to a webhook (chat, incident tool, ...).
#
#   [vrrp_instance.VI_1]
#   notify = "/etc/hafm/notify/webhook.sh https://hooks.example.com/hafm"
#
# Called as: webhook.sh URL INSTANCE|GROUP NAME STATE PRIORITY (hafm appends the last four).
# curl gives up after 10 s so a dead endpoint cannot hold the notify queue for long.
# Install: owned by root, mode 0755 (hafm refuses anything else).
set -eu

url=$1 kind=$2 name=$3 state=$4 priority=$5

json_string() {
    # Escape backslashes and double quotes; notify values hold no control characters.
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

body=$(printf '{"host": %s, "kind": %s, "name": %s, "state": %s, "previous": %s, "priority": %s, "reason": %s}' \
    "$(json_string "$(uname -n)")" "$(json_string "$kind")" "$(json_string "$name")" \
    "$(json_string "$state")" "$(json_string "${HAFM_PREV_STATE:-}")" "$priority" \
    "$(json_string "${HAFM_REASON:-}")")

exec curl --silent --show-error --fail --max-time 10 \
    --header 'Content-Type: application/json' --data "$body" "$url"
