#!/bin/sh
# Run by the postgres image once, when it initialises an empty data volume
# (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
#
# Two roles, neither a superuser:
#   DB_OWNER     owns the database and its tables; only `manage.py migrate` uses it.
#   DB_APP_USER  what web, worker and beat connect as: it may read and write rows,
#                nothing else.
# The split is what makes the audit table's append-only triggers hold against
# the running application: a superuser could skip them with
# session_replication_role, and a table's owner could drop or disable them.
#
# The image may source this file instead of executing it, so no `set -u` and
# no `exit`: a missing variable stops it through ${VAR:?}.
set -e

DB_NAME="${DB_NAME:-workflow_api}"
DB_OWNER="${DB_OWNER:-workflow_api_owner}"
DB_APP_USER="${DB_APP_USER:-workflow_api}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" \
  -v db="$DB_NAME" -v owner="$DB_OWNER" -v app="$DB_APP_USER" \
  -v owner_password="${DB_OWNER_PASSWORD:?DB_OWNER_PASSWORD is not set}" \
  -v app_password="${DB_APP_PASSWORD:?DB_APP_PASSWORD is not set}" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE :"db" OWNER :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
\connect :"db"
-- Tables and sequences the owner creates later (the migrations) are usable by
-- the application role for row access only.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
SQL
