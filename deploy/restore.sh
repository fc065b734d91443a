#!/usr/bin/env bash
# Restore a Kith node's data directory from an archive made by backup.sh.
# See deploy/README.md, "Restoring".
set -euo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
Usage: restore.sh [options] ARCHIVE

Unpacks ARCHIVE (made by backup.sh) into the kithd data directory, gives the files to
the kith user, and starts kithd.

It refuses to touch a data directory that already holds files, unless you pass
--force. With --force the current directory is not deleted: it is renamed to
DIR.before-restore-<UTC time>, so you can go back. Delete it yourself once the
restored node works.

Options:
  -d, --data-dir DIR   data directory to restore into    (default: /var/lib/kith)
  -u, --user USER      user kithd runs as                (default: kith)
  -s, --service NAME   systemd service to stop/start     (default: kithd)
      --force          replace a data directory that is not empty (kept aside)
      --no-start       do not start the service afterwards
      --no-service     do not stop or start any service (e.g. to test a backup by
                       restoring it into a scratch directory while the node runs)
  -h, --help           show this help

Run as root, e.g.:  sudo ./restore.sh /var/backups/kith/kith-backup-20250101T031500Z.tar.gz
EOF
}

die() {
    echo "restore.sh: $*" >&2
    exit 1
}

DATA_DIR=/var/lib/kith
RUN_USER=kith
SERVICE=kithd
FORCE=0
START=1
MANAGE_SERVICE=1
ARCHIVE=

while (($# > 0)); do
    case "$1" in
        -d | --data-dir)
            (($# >= 2)) || die "$1 needs a value"
            DATA_DIR=$2
            shift 2
            ;;
        -u | --user)
            (($# >= 2)) || die "$1 needs a value"
            RUN_USER=$2
            shift 2
            ;;
        -s | --service)
            (($# >= 2)) || die "$1 needs a value"
            SERVICE=$2
            shift 2
            ;;
        --force)
            FORCE=1
            shift
            ;;
        --no-start)
            START=0
            shift
            ;;
        --no-service)
            MANAGE_SERVICE=0
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            usage >&2
            die "unknown option: $1"
            ;;
        *)
            [[ -z $ARCHIVE ]] || die "only one archive, please (got '$ARCHIVE' and '$1')"
            ARCHIVE=$1
            shift
            ;;
    esac
done

[[ -n $ARCHIVE ]] || {
    usage >&2
    die "which archive? e.g. restore.sh /var/backups/kith/kith-backup-<time>.tar.gz"
}
((EUID == 0)) || die "run as root (sudo $0 ...): it must give the files to '$RUN_USER'"
[[ -f $ARCHIVE && -r $ARCHIVE ]] || die "cannot read the archive $ARCHIVE"
id "$RUN_USER" >/dev/null 2>&1 ||
    die "there is no user '$RUN_USER'; create it first (see README.md) or pass --user"
DATA_DIR=${DATA_DIR%/}
[[ -n $DATA_DIR ]] || die "--data-dir must not be /"
[[ $DATA_DIR == /* ]] || die "--data-dir must be an absolute path"

# Read the whole archive once: this also catches a truncated or damaged file before
# anything is changed.
echo "Checking $ARCHIVE ..."
listing=$(tar --list --gzip --file "$ARCHIVE") || die "$ARCHIVE is damaged or not a .tar.gz"
has_key=0
has_store=0
while IFS= read -r member; do
    case "$member" in
        /* | .. | ../* | */.. | */../*)
            die "$ARCHIVE contains an unsafe path ($member); not restoring it"
            ;;
        ./node.key | node.key) has_key=1 ;;
        ./store/* | store/*) has_store=1 ;;
    esac
done <<<"$listing"
((has_key)) || die "$ARCHIVE has no node.key: it is not a kithd backup"
((has_store)) || echo "restore.sh: warning: $ARCHIVE has no store/ (no events); restoring the key and config only." >&2

have_systemd_unit() {
    ((MANAGE_SERVICE)) &&
        command -v systemctl >/dev/null 2>&1 &&
        systemctl cat "$SERVICE" >/dev/null 2>&1
}

non_empty=0
if [[ -e $DATA_DIR ]]; then
    [[ -d $DATA_DIR ]] || die "$DATA_DIR exists and is not a directory"
    if [[ -n $(find "$DATA_DIR" -mindepth 1 -maxdepth 1 -print -quit) ]]; then
        non_empty=1
    fi
fi
if ((non_empty && !FORCE)); then
    die "$DATA_DIR is not empty. It may hold a node (its key and events) that you still
need. To replace it, run again with --force: the current directory is then renamed to
$DATA_DIR.before-restore-<time> rather than deleted."
fi
if mountpoint -q "$DATA_DIR" 2>/dev/null; then
    die "$DATA_DIR is a mount point, which this script cannot replace. Stop $SERVICE, make sure
the directory is empty, then unpack by hand:
  tar -xzpf $ARCHIVE -C $DATA_DIR && chown -R $RUN_USER: $DATA_DIR"
fi

# The node must not run while its files are replaced.
was_running=0
touched=0
if have_systemd_unit && systemctl is-active --quiet "$SERVICE"; then
    echo "Stopping $SERVICE."
    was_running=1
    systemctl stop "$SERVICE"
elif ((MANAGE_SERVICE)) && ! have_systemd_unit; then
    echo "restore.sh: no systemd service '$SERVICE' here: make sure kithd is not running on $DATA_DIR." >&2
fi

# Unpack next to the target (same filesystem), so the final step is a rename.
parent=$(dirname -- "$DATA_DIR")
mkdir -p -- "$parent"
staging=$(mktemp -d "$parent/.kith-restore.XXXXXX")
cleanup() {
    if [[ -n ${staging:-} && -d $staging ]]; then
        rm -rf -- "$staging"
    fi
    # Failed before anything was replaced: put the node back the way it was.
    if ((was_running && !touched)); then
        echo "restore.sh: nothing was changed; starting $SERVICE again." >&2
        systemctl start "$SERVICE" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "Unpacking into a temporary directory ..."
tar --extract --gzip --file "$ARCHIVE" --directory "$staging" --no-same-owner
[[ -f $staging/node.key ]] || die "node.key missing after unpacking; nothing was changed"

group=$(id -gn "$RUN_USER")
chown -R -- "$RUN_USER:$group" "$staging"
chmod -R go-rwx "$staging"
chmod 600 "$staging/node.key"
[[ ! -f $staging/kithd.toml ]] || chmod 600 "$staging/kithd.toml"

# From here on the data directory changes: never start kithd on a half-done state (it
# would make itself a new node key).
touched=1
aside=
if [[ -e $DATA_DIR ]]; then
    if ((non_empty)); then
        aside="$DATA_DIR.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
        mv -- "$DATA_DIR" "$aside"
    else
        rmdir -- "$DATA_DIR"
    fi
fi
if ! mv -- "$staging" "$DATA_DIR"; then
    if [[ -n $aside ]] && mv -- "$aside" "$DATA_DIR"; then
        die "could not move the restored files into place; the previous data directory is back as it was"
    fi
    die "could not move the restored files into place; $DATA_DIR is now missing${aside:+ (the previous one is $aside)}"
fi
staging=
[[ -z $aside ]] || echo "The previous data directory is kept as $aside"
echo "Restored $ARCHIVE into $DATA_DIR."

if ((START)) && have_systemd_unit; then
    echo "Starting $SERVICE."
    systemctl start "$SERVICE" || die "$SERVICE did not start; see: journalctl -u $SERVICE -n 50"
    sleep 2
    if systemctl is-active --quiet "$SERVICE"; then
        echo "$SERVICE is running. Check it with: curl http://127.0.0.1:8080/health"
        echo "and compare the node key in 'journalctl -u $SERVICE -n 20' with the one you expect."
    else
        die "$SERVICE did not stay up; see: journalctl -u $SERVICE -n 50"
    fi
else
    echo "Start kithd when ready (e.g. systemctl start $SERVICE)."
fi
