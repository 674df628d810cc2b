#!/bin/sh
# Check b) boot: `foldvm run --vm name=l,mem=256M,vcpus=2,kernel=,initrd=,
# disk=,balloon=on` of Debian's kernel reaches /init, nproc says 2, the disk's
# and the balloon's drivers bind, and `poweroff -f` ends the guest as shutdown.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
truncate -s 64M "$TMP/disk.img"
fv_start l mem=256M vcpus=$FV_VCPUS "disk=$TMP/disk.img" balloon=on "cmdline=$L2_CMDLINE fvtest=info"
fv_wait_init l
LOG=$TMP/logs/l.log
fv_finish l "$FV_PID"
expect_in "$LOG" "^FV: ready nproc=$FV_VCPUS virtio=2 " "^FV: info nproc=$FV_VCPUS " \
	'^FV: info driver virtio_blk bound=1' '^FV: info driver virtio_balloon bound=1'
echo "PASS foldvm_boot: foldvm booted $KVER to /init in $T_INIT ms; $(grep -a '^FV: info nproc' "$LOG" | sed 's/^FV: info //'); drivers: $(grep -a '^FV: virtio ' "$LOG" | sed 's/^FV: virtio //' | tr '\n' ';' | sed 's/;$//'); poweroff -f: $(grep -E '^l ' "$TMP/l.out" | sed 's/  */ /g')"
