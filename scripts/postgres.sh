#!/usr/bin/env bash
# A throwaway PostgreSQL + pgvector cluster for Baton's shared-library tests and for trying a studio library locally.
#
#   scripts/postgres.sh start     install what is missing, start the cluster, print its URL on stdout
#   scripts/postgres.sh url       print the URL of the running cluster (exit 1 when it is not running)
#   scripts/postgres.sh stop      stop the cluster (its data stays under .cache/postgres until removed)
#   scripts/postgres.sh install   only install PostgreSQL and pgvector
#
# The cluster lives under <repo>/.cache/postgres (git-ignored), listens on 127.0.0.1 on a free port and on a unix
# socket in .cache/postgres/run, trusts local connections (it is a test cluster: never expose it), and has a database
# `baton` with the `vector` extension. Root cannot run postgres, so as root the server runs as the `postgres` user.
# pgvector: the Debian package postgresql-<major>-pgvector when the archive has one; otherwise (Debian 12 has none)
# it is built from Debian's own pgvector source package (trixie, fetched with `apt-get source` into a private apt
# state, so the system's apt sources are not changed) and installed with `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BASE="$REPO/.cache/postgres"
DATA="$BASE/data"
RUN="$BASE/run"
LOG="$BASE/server.log"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "postgres.sh: $*" >&2; }

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] || return 1
  echo "$d"
}

install_server() {
  if ! pg_bindir >/dev/null; then
    log "installing PostgreSQL (apt: postgresql)"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
}

build_pgvector_from_debian_source() {
  local major="$1" work
  work="$BASE/pgvector-src"
  rm -rf "$work"; mkdir -p "$work/lists/partial" "$work/src"
  log "no postgresql-$major-pgvector package in this archive: building pgvector from Debian's source package"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "postgresql-server-dev-$major" build-essential dpkg-dev >/dev/null
  # The archive this machine's apt already uses (its first non-security URI), asked for the next release's sources.
  local mirror
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && !/security/ {print $2; exit}')
  [ -n "$mirror" ] || mirror=$(awk '/^deb / && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { log "no Debian archive found in /etc/apt/sources.list*"; exit 1; }
  echo "deb-src $mirror trixie main" >"$work/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0")
  apt-get "${opts[@]}" update -qq >/dev/null
  (cd "$work/src" && apt-get "${opts[@]}" source --download-only -qq pgvector >/dev/null \
     && dpkg-source -x --no-check ./*.dsc pgvector >/dev/null)
  make -s -C "$work/src/pgvector" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$work/src/pgvector" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" install >/dev/null
  rm -rf "$work"
}

install_pgvector() {
  local bindir major share
  bindir=$(pg_bindir)
  major=$(basename "$(dirname "$bindir")")
  share=$("$bindir/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
  [ -f "$share/extension/vector.control" ] && return 0
  if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
    log "installing postgresql-$major-pgvector"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "postgresql-$major-pgvector" >/dev/null
  else
    build_pgvector_from_debian_source "$major"
  fi
  [ -f "$share/extension/vector.control" ] || { log "pgvector did not install"; exit 1; }
}

# Run a command as the cluster's owner (the postgres user when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$(pg_bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() { echo "postgresql://postgres@127.0.0.1:$(cat "$BASE/port")/baton"; }

start() {
  install_server
  install_pgvector
  local bindir port
  bindir=$(pg_bindir)
  mkdir -p "$BASE" "$RUN"
  if running; then url; return 0; fi
  [ "$(id -u)" -eq 0 ] && chown postgres: "$BASE" "$RUN"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_owner "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  fi
  port=$(free_port)
  echo "$port" >"$BASE/port"
  as_owner "$bindir/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $RUN -c fsync=off -c full_page_writes=off" >/dev/null
  if ! as_owner "$bindir/psql" -h "$RUN" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='baton'" \
       | grep -q 1; then
    as_owner "$bindir/createdb" -h "$RUN" -p "$port" -U postgres baton
  fi
  as_owner "$bindir/psql" -q -h "$RUN" -p "$port" -U postgres -d baton -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
  url
}

stop() {
  if running; then as_owner "$(pg_bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) running && url || { log "not running"; exit 1; } ;;
  install) install_server; install_pgvector ;;
  *) echo "usage: $0 [start|stop|url|install]" >&2; exit 2 ;;
esac
