#!/bin/sh
# The postgres image runs this once, as the superuser, when it initialises an empty data directory.
set -eu
psql --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set app_user="$POSTGRES_APP_USER" --set app_password="$POSTGRES_APP_PASSWORD" --set db="$POSTGRES_DB" \
     --file "${CLAW_APP_USER_SQL:-/claw/app-user.sql}"
