#!/usr/bin/env bash
# smoke.sh [--record] [--keep] -- build the vmlab image (cached) and run the smoke scenario:
# one VM with LVM thin (pool, thin LV, thin snapshot, lvextend, lvremove), two VMs with a DRBD 8.4
# resource over a -netdev socket link (skip initial sync, primary on a, read back on b,
# disconnect/write/reconnect/resync). Exits non-zero on any failure; bounded by timeouts.
#   --record   also write the verbatim tool outputs into tests/vmlab/recorded/
#   --keep     keep the work directory (disk images, console logs) even on success
# Environment: STRATA_VMLAB_DIR (image directory, default /var/cache/strata-vmlab),
# PYTHON (interpreter, default /usr/bin/python3).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
args=()
for a in "$@"; do
  case "$a" in
    --record) args+=(--record "$HERE/recorded") ;;
    --keep) args+=(--keep) ;;
    *) echo "smoke.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
"$HERE/build-image.sh"
echo "smoke.sh: image ready after $(( $(date +%s) - start )) s"
# smoke.py stops its VMs on SIGTERM; the outer bound is 10 minutes (the scenario takes about 1).
# The interpreter is started directly: a wrapper such as a pyenv shim would take the SIGTERM of
# `timeout` and die, leaving python and its VMs running.
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY="$(command -v python3)"; fi
fi
rc=0
timeout --kill-after=60 600 "$PY" "$HERE/smoke.py" ${STRATA_VMLAB_DIR:+--image-dir "$STRATA_VMLAB_DIR"} "${args[@]}" || rc=$?
echo "smoke.sh: finished after $(( $(date +%s) - start )) s with status $rc"
exit $rc
