#!/bin/sh
# Check b) a read-only disk (disk-ro=on): the guest's kernel sees /dev/vda
# read-only, can read the host's file but neither a read-write mount nor a
# file write nor a raw write succeeds, and the image is unchanged.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
token="ro-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mk_ext4 "$TMP/ro.img" 32 "ro.txt=$token"
before=$(cksum <"$TMP/ro.img")
vm_start r mem=256M vcpus=$FV_VCPUS "disk=$TMP/ro.img" disk-ro=on \
	"cmdline=$L2_CMDLINE fvtest=blk fvblk=ro fvfile=ro.txt fvexpect=$token"
vm_wait_init r
vm_finish r "$VM_PID"
raw=$(sed -n "s/^FV: blk ro writes refused (raw: \(.*\))/\1/p" "$TMP/logs/r.log")
LOG=$TMP/logs/r.log
expect_in "$LOG" '^FV: blk device /dev/vda .* ro=1' '^FV: blk mounted ro' "^FV: blk read ro.txt=$token" '^FV: blk ro writes refused'
[ "$(cksum <"$TMP/ro.img")" = "$before" ] || fail "the read-only image changed"
echo "PASS ${VMM}_blk_ro: a read-only disk (foldvm disk-ro=on, QEMU readonly=on): the guest sees /dev/vda ro=1, mounts it read-only, reads ro.txt=$token, its file write and its raw write ($raw) are refused; the image is unchanged"
