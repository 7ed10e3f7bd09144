#!/usr/bin/env bash
# Makes sure a local PostgreSQL (Debian's postgresql package) answers on
# 127.0.0.1:5432 for the PostgreSQL tests (adapter/postgres and the
# multi-replica test in cmd/linkbridge), and prints the URL they connect with.
# Starts the cluster with pg_ctlcluster when it is down, installs the package
# when it is missing. Messages go to stderr; only the URL goes to stdout.
set -euo pipefail

url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
ready() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
	echo "postgres.sh: installing postgresql" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
if ! ready; then
	for version in $(ls /etc/postgresql); do
		echo "postgres.sh: starting cluster $version/main" >&2
		pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
	done
fi
for _ in $(seq 1 60); do
	ready && break
	sleep 0.5
done
if ! ready; then
	echo "postgres.sh: PostgreSQL does not answer on 127.0.0.1:5432" >&2
	exit 1
fi
# A fresh install asks TCP clients for a password (scram-sha-256): give the
# postgres role one for the tests, local to this machine.
if ! psql "$url" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	runuser -u postgres -- psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" >&2
	url="postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
	psql "$url" -qAtc 'SELECT 1' >/dev/null
fi
echo "$url"
