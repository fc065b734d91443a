#!/usr/bin/env bash
# Back up a Kith node's data directory (node.key, kithd.toml, store/) into a
# timestamped, private (mode 0600) archive. See deploy/README.md, "Backups".
set -euo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
Usage: backup.sh [options]

Copies the kithd data directory into DEST/kith-backup-<UTC time>.tar.gz (mode 0600)
and deletes the oldest archives so that only the newest N are kept.

By default kithd is stopped for the copy (usually a few seconds) and started again
right after, because the store's files must be copied all at the same moment: a copy
taken file by file while kithd is writing can be unusable.

Options:
  -d, --data-dir DIR   data directory to back up        (default: /var/lib/kith)
  -o, --dest DIR       where to put the archives         (default: /var/backups/kith)
  -k, --keep N         archives to keep; 0 keeps all     (default: 7)
  -s, --service NAME   systemd service to stop/start     (default: kithd)
      --no-stop        do not stop kithd. Only safe when DIR is a filesystem snapshot
                       (LVM, btrfs, ZFS: an atomic copy taken at one instant) or when
                       kithd is already stopped. sled, kithd's store, recovers from
                       such a crash-consistent copy the way it recovers from a power
                       cut; a plain copy of a running node's files is not one.
  -h, --help           show this help

Run as root (it reads node.key and stops and starts the service), e.g. daily from
/etc/cron.d/kith-backup:
  15 3 * * * root /usr/local/sbin/kith-backup --keep 14 2>&1 | logger -t kith-backup
Then copy the archives OFF this machine: a backup on the same disk does not survive
the disk or the VPS being lost.
EOF
}

die() {
    echo "backup.sh: $*" >&2
    exit 1
}

DATA_DIR=/var/lib/kith
DEST=/var/backups/kith
KEEP=7
SERVICE=kithd
STOP=1

while (($# > 0)); do
    case "$1" in
        -d | --data-dir)
            (($# >= 2)) || die "$1 needs a value"
            DATA_DIR=$2
            shift 2
            ;;
        -o | --dest)
            (($# >= 2)) || die "$1 needs a value"
            DEST=$2
            shift 2
            ;;
        -k | --keep)
            (($# >= 2)) || die "$1 needs a value"
            KEEP=$2
            shift 2
            ;;
        -s | --service)
            (($# >= 2)) || die "$1 needs a value"
            SERVICE=$2
            shift 2
            ;;
        --no-stop)
            STOP=0
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown option: $1"
            ;;
    esac
done

[[ $KEEP =~ ^[0-9]+$ ]] || die "--keep takes a whole number, not '$KEEP'"
DATA_DIR=${DATA_DIR%/}
[[ -n $DATA_DIR ]] || die "--data-dir must not be /"
[[ -d $DATA_DIR ]] || die "$DATA_DIR is not a directory"
[[ -f $DATA_DIR/node.key ]] ||
    die "$DATA_DIR has no node.key: is it a kithd data directory? (or run as root: sudo $0)"
[[ -r $DATA_DIR/node.key ]] || die "cannot read $DATA_DIR/node.key: run as root (sudo $0)"

have_systemctl() { command -v systemctl >/dev/null 2>&1; }
service_active() { have_systemctl && systemctl is-active --quiet "$SERVICE"; }

# Everything created from here on is readable by its owner only.
umask 077
case "$(realpath -m -- "$DEST")/" in
    "$(realpath -m -- "$DATA_DIR")"/*) die "--dest must not be inside the data directory" ;;
esac
mkdir -p "$DEST"
chmod 700 "$DEST"

# The copy is first written uncompressed (fast, so kithd is back quickly) and compressed
# afterwards: it needs about as much free space as the data directory, plus a margin.
# Check before stopping anything.
need_kib=$(du -sk "$DATA_DIR" | cut -f1)
need_kib=$((need_kib + need_kib / 10 + 1024))
free_kib=$(df -Pk "$DEST" | awk 'NR == 2 { print $4 }')
if ((need_kib > free_kib)); then
    die "$DEST has ${free_kib} KiB free but the copy needs about ${need_kib} KiB; free some space or use --dest"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
archive="$DEST/kith-backup-$stamp.tar.gz"
partial_tar="$DEST/kith-backup-$stamp.tar.partial"
partial="$archive.partial"
[[ ! -e $archive ]] || die "$archive already exists; wait a second and run again"

restart_needed=0
start_again() {
    if ((restart_needed)); then
        restart_needed=0
        echo "Starting $SERVICE again."
        if ! systemctl start "$SERVICE"; then
            echo "backup.sh: WARNING: could not start $SERVICE; see: journalctl -u $SERVICE" >&2
            return 1
        fi
    fi
}
cleanup() {
    rm -f -- "$partial_tar" "$partial"
    start_again || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if ((STOP)); then
    have_systemctl || die "systemctl not found: stop kithd yourself, then run with --no-stop"
    if service_active; then
        echo "Stopping $SERVICE for a consistent copy (it finishes writes and flushes first)."
        # Set before stopping, so that even an interrupted stop ends with a start.
        restart_needed=1
        systemctl stop "$SERVICE"
    else
        echo "$SERVICE is not running: copying without stopping or starting it."
    fi
elif service_active; then
    echo "backup.sh: WARNING: --no-stop while $SERVICE is running. Unless $DATA_DIR is a" >&2
    echo "backup.sh: WARNING: filesystem snapshot, this copy may not be restorable." >&2
fi

echo "Copying $DATA_DIR ..."
if ! tar --create --file "$partial_tar" --directory "$DATA_DIR" .; then
    die "tar failed (if it said a file changed while being read, the copy is not consistent: stop kithd or copy from a snapshot)"
fi

# The copy is complete: bring the node back before compressing and checking. If it does
# not start, still keep the archive, but end with an error.
start_failed=0
start_again || start_failed=1

echo "Compressing ..."
nice -n 10 gzip --stdout -- "$partial_tar" >"$partial"
rm -f -- "$partial_tar"

# Check the archive reads back to the end and holds the node key.
tar --list --gzip --file "$partial" ./node.key >/dev/null ||
    die "the new archive does not read back correctly; nothing was kept"
sync -- "$partial" 2>/dev/null || sync
mv -- "$partial" "$archive"
chmod 600 "$archive"
echo "Backup written: $archive ($(du -h "$archive" | cut -f1))"

if ((KEEP > 0)); then
    shopt -s nullglob
    archives=("$DEST"/kith-backup-*.tar.gz)
    # The names sort by time, oldest first.
    count=${#archives[@]}
    if ((count > KEEP)); then
        for old in "${archives[@]:0:count-KEEP}"; do
            rm -f -- "$old"
            echo "Removed old backup: $old"
        done
    fi
fi

echo "Remember to copy it off this machine (e.g. scp or rsync to your own computer)."
if ((start_failed)); then
    die "the backup is fine, but $SERVICE did not start again: see journalctl -u $SERVICE"
fi
