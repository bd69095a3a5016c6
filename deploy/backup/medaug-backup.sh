#!/usr/bin/env bash
# Back up the review queue (PostgreSQL) and check that a backup restores (docs/deploy.md).
#
#   medaug-backup.sh backup OUT_DIR               -> OUT_DIR/<UTC time>/{audit.jsonl,queue.pgdump,SHA256SUMS}
#   medaug-backup.sh verify BACKUP_DIR SCRATCH_DB -> restores into SCRATCH_DB (an existing, empty database),
#                                                    verifies the audit chain there and that it holds every
#                                                    exported audit row unchanged; exit 0 only if all hold
#
# Reads MEDAUG_QUEUE_DB (the SQLAlchemy URL, postgresql+psycopg://...) and MEDAUG_AUDIT_KEY from the
# environment (e.g. `set -a; . /etc/medaug/queue.env`). MEDAUG names the medaug command (default: medaug
# on PATH), PYTHON a Python 3 for the row comparison (default: python3). Backups hold de-identified
# sample text and physicians' corrections: keep them where the database is allowed to be.
set -euo pipefail
umask 077
MEDAUG=${MEDAUG:-medaug}
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "medaug-backup: $*" >&2; exit 1; }
libpq_url() { printf '%s' "$1" | sed -E 's#^postgresql\+[a-z0-9]+://#postgresql://#'; }  # pg_dump has no +driver
need_pg() { case "$1" in postgresql*) ;; *) die "$2 must be a PostgreSQL URL, got '${1%%:*}:...'";; esac; }

backup() {
  local out=$1 db=${MEDAUG_QUEUE_DB:?set MEDAUG_QUEUE_DB} dir
  need_pg "$db" MEDAUG_QUEUE_DB
  dir="$out/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$dir"
  # The export first (it records itself in the log), then the dump, so the dump holds every exported row.
  "$MEDAUG" queue audit export --db "$db" --out "$dir/audit.jsonl" --actor backup
  pg_dump --format=custom --no-owner --no-privileges --file "$dir/queue.pgdump" "$(libpq_url "$db")"
  (cd "$dir" && sha256sum audit.jsonl queue.pgdump > SHA256SUMS)
  echo "backup written to $dir"
}

verify() {
  local dir=$1 scratch=$2 restored=$TMP/restored.jsonl
  need_pg "$scratch" SCRATCH_DB
  [ -f "$dir/SHA256SUMS" ] || die "$dir: no SHA256SUMS (not a backup folder?)"
  (cd "$dir" && sha256sum --check --quiet SHA256SUMS) || die "$dir: checksum mismatch"
  pg_restore --exit-on-error --no-owner --no-privileges --dbname "$(libpq_url "$scratch")" "$dir/queue.pgdump" \
    || die "$dir/queue.pgdump: restore into the scratch database failed (it must exist and be empty)"
  "$MEDAUG" queue audit verify --db "$scratch" || die "restored audit log does not verify"
  "$MEDAUG" queue audit export --db "$scratch" --out "$restored" --actor verify-restore >/dev/null
  "$PYTHON" - "$dir/audit.jsonl" "$restored" <<'PY' || die "restored database lacks or changed exported audit rows"
import json, sys
saved = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
now = {r["seq"]: r for r in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
bad = [r["seq"] for r in saved if now.get(r["seq"]) != r]
if bad:
    print(f"{len(bad)} of {len(saved)} exported audit rows missing or different in the restore, first seq {bad[0]}")
    sys.exit(1)
print(f"restore holds all {len(saved)} exported audit rows unchanged")
PY
  echo "backup $dir verified"
}

case "${1:-}" in
  backup) [ $# -eq 2 ] || die "usage: $0 backup OUT_DIR"; backup "$2" ;;
  verify) [ $# -eq 3 ] || die "usage: $0 verify BACKUP_DIR SCRATCH_DB_URL"; verify "$2" "$3" ;;
  *) die "usage: $0 backup OUT_DIR | verify BACKUP_DIR SCRATCH_DB_URL" ;;
esac
