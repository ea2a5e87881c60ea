#!/usr/bin/env bash
# Install libvirt + QEMU and start the daemons for the integration tests.
#
# Safe to run again: apt skips installed packages and running daemons are left
# alone. Written for CI containers that run as root without systemd, so the
# daemons are started by hand rather than through unit files.
set -euo pipefail

readonly PACKAGES=(
    libvirt-daemon-system libvirt-dev pkg-config qemu-system-x86 qemu-utils
)
readonly URI="qemu:///system"
readonly TIMEOUT_SECONDS=60

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q "install ok installed" || echo "$pkg"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages)
    if [ -z "$missing" ]; then
        echo "libvirt-setup: packages already installed"
        return
    fi
    echo "libvirt-setup: installing" $missing
    as_root apt-get update -q
    # shellcheck disable=SC2086  # the list must split into words
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $missing
}

# Without udev (containers), /dev/kvm stays root-only and QEMU, which libvirt
# runs as libvirt-qemu in group kvm, falls over; do what Debian's udev rule does.
allow_kvm() {
    if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
        as_root chgrp kvm /dev/kvm
        as_root chmod 0660 /dev/kvm
    fi
}

# pgrep -x matches the exact process name, so this never confuses libvirtd with
# another daemon whose command line merely mentions it.
start_daemon() {
    local name=$1
    if pgrep -x "$name" >/dev/null; then
        echo "libvirt-setup: $name already running"
        return
    fi
    echo "libvirt-setup: starting $name"
    as_root "$name" -d
}

wait_for_libvirtd() {
    local deadline=$((SECONDS + TIMEOUT_SECONDS))
    local answer
    until answer=$(as_root virsh -c "$URI" version 2>&1); do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "libvirt-setup: $URI did not answer in ${TIMEOUT_SECONDS}s" >&2
            echo "$answer" >&2
            exit 1
        fi
        sleep 1
    done
    echo "$answer"
}

install_packages
allow_kvm
start_daemon virtlogd
start_daemon libvirtd
wait_for_libvirtd
