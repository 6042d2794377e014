#!/bin/sh
# pgBackRest schedule of the compose `pgbackrest` service (same image and volumes as postgres):
# creates the stanza once, then a full backup every day at FULL_AT (UTC hour, default 02) and a
# differential every DIFF_EVERY_H hours (default 6) in between; `expire` runs after each backup
# (retention in pgbackrest.conf). After each backup it writes the node exporter textfile
# metric pgbackrest_last_backup_timestamp_seconds{type} (for dashboards/alerts).
set -eu
STANZA="${STANZA:-gtvision}"
FULL_AT="${FULL_AT:-02}"
DIFF_EVERY_H="${DIFF_EVERY_H:-6}"
TEXTFILE_DIR="${TEXTFILE_DIR:-/var/lib/node-exporter}"

log() { printf '%s pgbackrest-schedule: %s\n' "$(date -u +%FT%TZ)" "$*"; }

until pg_isready -h /var/run/postgresql -q; do sleep 2; done
pgbackrest --stanza="$STANZA" stanza-create || log "stanza-create failed (exists?)"
pgbackrest --stanza="$STANZA" check

backup() {  # type
    if pgbackrest --stanza="$STANZA" --type="$1" backup; then
        mkdir -p "$TEXTFILE_DIR"
        tmp="$TEXTFILE_DIR/.pgbackrest.$$"
        {
            echo "# HELP pgbackrest_last_backup_timestamp_seconds Unix time of the last successful backup"
            echo "# TYPE pgbackrest_last_backup_timestamp_seconds gauge"
            for t in full diff; do
                f="$TEXTFILE_DIR/.last_$t"
                [ "$t" = "$1" ] && date +%s >"$f"
                [ -f "$f" ] && echo "pgbackrest_last_backup_timestamp_seconds{type=\"$t\"} $(cat "$f")"
            done
        } >"$tmp"
        mv "$tmp" "$TEXTFILE_DIR/pgbackrest.prom"
        log "$1 backup done"
    else
        log "$1 backup FAILED"
    fi
}

# a fresh deployment gets its first full backup at once
pgbackrest --stanza="$STANZA" info --output=json | grep -q '"label"' || backup full
last_diff=$(date +%s)
while true; do
    sleep 60
    now=$(date +%s)
    if [ "$(date -u +%H%M)" = "${FULL_AT}00" ]; then
        backup full
        last_diff=$now
    elif [ $((now - last_diff)) -ge $((DIFF_EVERY_H * 3600)) ]; then
        backup diff
        last_diff=$now
    fi
done
