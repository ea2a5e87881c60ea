#!/usr/bin/env bash
# .ci/run runs every setup-*.sh; the libvirt integration tests need the daemon.
exec "$(dirname "$0")/libvirt-setup.sh"
