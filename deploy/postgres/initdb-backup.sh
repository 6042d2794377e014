#!/bin/sh
# docker-entrypoint-initdb.d hook: the new cluster includes the WAL archiving settings
# (/etc/postgresql/backup.conf, from deploy/postgres/backup.conf). Restored clusters keep the
# include: postgresql.conf is part of every backup.
set -eu
echo "include '/etc/postgresql/backup.conf'" >>"$PGDATA/postgresql.conf"
