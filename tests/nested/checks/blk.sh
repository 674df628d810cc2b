#!/bin/sh
# Check b) virtio-blk: an ext4 image made on the host (mke2fs -d) is mounted
# by a Linux guest under $VMM (foldvm, or the QEMU reference), which writes a file, syncs and powers off;
# the host then reads the file back from the image (debugfs) and e2fsck finds
# the file system clean.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
token="fv-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mk_ext4 "$TMP/disk.img" 64 "from-host.txt=made on the host"
vm_start b mem=256M vcpus=$FV_VCPUS "disk=$TMP/disk.img" \
	"cmdline=$L2_CMDLINE fvtest=blk fvfile=written.txt fvdata=$token"
vm_wait_init b
vm_finish b "$VM_PID"
LOG=$TMP/logs/b.log
expect_in "$LOG" '^FV: blk mounted rw' "^FV: blk wrote written.txt=$token"
got=$(debugfs -R 'cat /written.txt' "$TMP/disk.img" 2>/dev/null)
[ "$got" = "$token" ] || fail "the host read '$got' from /written.txt on the image, the guest wrote '$token'"
host=$(debugfs -R 'cat /from-host.txt' "$TMP/disk.img" 2>/dev/null)
[ "$host" = "made on the host" ] || fail "the host's own file on the image now reads '$host'"
e2fsck -fn "$TMP/disk.img" >"$TMP/fsck.out" 2>&1 || { cat "$TMP/fsck.out"; fail "e2fsck finds the image damaged after the guest used it"; }
echo "PASS ${VMM}_blk: the guest mounted the host-made ext4 image, wrote written.txt=$token; after poweroff the host's debugfs reads '$got'; e2fsck clean"
