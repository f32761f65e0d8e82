# What a pod can see of its kernel and host, as key=value lines (busybox sh, any user, no exec needed).
# Read back from the termination message, or from the log between the markers.
report() {
  echo "kernel=$(uname -r) $(uname -v)"
  echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
  names=$(for d in /proc/[0-9]*; do cat "$d/comm" 2>/dev/null; done)
  echo "process_count=$(printf '%s\n' "$names" | grep -c .)"
  # Kernel threads and node daemons are only visible from the host's PID namespace.
  echo "host_processes=$(printf '%s\n' "$names" | grep -E '^(kthreadd|kubelet|containerd.*|systemd|runc|dockerd)$' \
    | sort -u | tr '\n' ',')"
  echo "dev_mem=$([ -e /dev/mem ] && echo present || echo absent)"
  # The root (field 4) of a mount of a disk or overlay filesystem, other than /, is a path on the host (as the
  # kubelet's /etc/hosts); overlay options name the host's layers.
  echo "host_paths=$( (awk '{for (i = 7; i <= NF; i++) if ($i == "-") fs = $(i + 1)}
      $4 != "/" && fs ~ /^(ext[234]|xfs|btrfs|zfs|overlay|virtiofs|9p)$/ {print $4}' /proc/self/mountinfo
    grep -o -E '(lowerdir|upperdir)=[^,: ]*' /proc/self/mountinfo) | sort -u | head -n 5 | tr '\n' ',')"
  echo "interfaces=$(sed -n 's/^ *\([^ :]*\):.*/\1/p' /proc/net/dev | sort -u | tr '\n' ',')"
}
result=$(report)
printf 'KAIC-SANDBOX-BEGIN\n%s\nKAIC-SANDBOX-END\n' "$result"
printf '%s' "$result" > /dev/termination-log 2>/dev/null || true
