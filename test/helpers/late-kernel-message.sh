#!/bin/sh
# A site hook for the debian template's tests (copied into HOOKS_DIR as a run-parts name): the
# instance prints two kernel messages right after its serial getty has shown the login prompt,
# through /dev/kmsg, as a late driver would: one at level 3 (err) and one at level 2 (crit).
# They land on the prompt's line (it has no newline), like the `powernow_k8: ...` seen on trixie.
# With the template's quiet console (kernel.printk = 3 4 1 7) only the critical one shows.
set -e
unit=ganeti-os-test-late-kmsg.service
cat >"$TARGET/etc/systemd/system/$unit" <<'UNIT'
[Unit]
Description=ganeti-os test: late kernel messages after the login prompt
After=serial-getty@ttyS0.service getty.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sleep 10; echo "<3>ganeti-os-test: a late kernel message (err)" >/dev/kmsg; echo "<2>ganeti-os-test: a late kernel message (crit)" >/dev/kmsg'

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$TARGET/etc/systemd/system/multi-user.target.wants"
ln -sfn "/etc/systemd/system/$unit" "$TARGET/etc/systemd/system/multi-user.target.wants/$unit"
