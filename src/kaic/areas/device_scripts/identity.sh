# kaic accelerator identity: which device nodes and device identities this container can see.
# POSIX sh (ubuntu, busybox). Settings come from the environment:
#   KAIC_DEVICE_GLOBS  space-separated device-node globs, e.g. "/dev/nvidia[0-9]*"
#   KAIC_IDENTITY      nvidia-smi | env | nodes | drm-pci
#   KAIC_ENV_PATTERN   for `env`: sed BRE whose \1 is one identity, e.g. "^GPU_DEVICE_[A-Z0-9_]*=\(gpu-.*\)$"
#   KAIC_ROOT          prefix of /dev and /sys (tests use a fake tree); empty in a pod
#   KAIC_RESULT_FILE   where the result also goes (default /dev/termination-log)
# Prints one JSON object between KAIC-RESULT-BEGIN and KAIC-RESULT-END and writes it to KAIC_RESULT_FILE.
root="${KAIC_ROOT:-}"

json_list() {  # one JSON array of the newline-separated words on stdin; quotes, backslashes, control and
  # non-ASCII bytes dropped (octal ranges: busybox's tr may lack character classes)
  sep=""
  printf '['
  while IFS= read -r item; do
    [ -n "$item" ] || continue
    printf '%s"%s"' "$sep" "$(printf '%s' "$item" | LC_ALL=C tr -d '\000-\037\177-\377"\\')"
    sep=","
  done
  printf ']'
}

devices=$(set -f; for pattern in $KAIC_DEVICE_GLOBS; do  # split the list without globbing it
  set +f
  for path in "$root"$pattern; do
    [ -e "$path" ] && printf '%s\n' "${path#"$root"}"
  done
  set -f
done | sort -u)

tool="n/a"
driver=""
case "${KAIC_IDENTITY:-nodes}" in
  nvidia-smi)
    if command -v nvidia-smi >/dev/null 2>&1; then
      tool="present"
      smi=$(nvidia-smi --query-gpu=uuid,driver_version --format=csv,noheader 2>/dev/null | grep '^GPU-')
      ids=$(printf '%s\n' "$smi" | sed -n 's/^\(GPU-[^,]*\),.*$/\1/p' | sort -u)
      driver=$(printf '%s\n' "$smi" | sed -n 's/^[^,]*, *\([^ ,]*\).*$/\1/p' | sort -u | head -n 1)
    else
      tool="missing"
      ids=""
    fi ;;
  env) ids=$(env | sed -n "s/${KAIC_ENV_PATTERN}/\\1/p" | sort -u) ;;
  drm-pci)
    ids=$(for node in "$root"/sys/class/drm/renderD*; do
      [ -e "$node/device" ] && basename "$(readlink -f "$node/device")"
    done | sort -u) ;;
  *) ids=$(printf '%s\n' "$devices" | sed 's|.*/||') ;;
esac

result=$(printf '{"devices":%s,"ids":%s,"tool":"%s","driverVersion":"%s"}' \
  "$(printf '%s\n' "$devices" | json_list)" "$(printf '%s\n' "$ids" | json_list)" "$tool" "$driver")
printf 'KAIC-RESULT-BEGIN\n%s\nKAIC-RESULT-END\n' "$result"
printf '%s' "$result" > "${KAIC_RESULT_FILE:-/dev/termination-log}" 2>/dev/null || true
