-- The application's own PostgreSQL role: it owns the tables it creates, nothing more.
--
-- Run once by the superuser when the database is created (compose: initdb-app-user.sh, the postgres
-- image's /docker-entrypoint-initdb.d). psql variables: app_user, app_password, db.
-- The application connects as app_user: no superuser, no CREATEDB/CREATEROLE, no other database.
-- pgvector needs a superuser to be installed, so it is installed here; the schema migrations'
-- "CREATE EXTENSION IF NOT EXISTS vector" then finds it.

\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS vector;
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app_user";
-- Migrations create their tables (and the per-base indexes) in the public schema.
GRANT USAGE, CREATE ON SCHEMA public TO :"app_user";
