/*
 * init.c - /init of foldvm's test initramfs: proof that a Linux guest got
 * all the way to user space.  It prints one line on the console (the
 * kernel hands /init the console as fds 0-2) and reboots, which foldvm
 * sees as the i8042 reset and turns into the guest's clean shutdown.
 *
 * Freestanding: no libc, raw system calls, so it builds with the host
 * compiler alone and the initramfs is one small static file.
 */
#define SYS_write 1
#define SYS_sync 162
#define SYS_reboot 169
#define REBOOT_MAGIC1 0xfee1deadL
#define REBOOT_MAGIC2 672274793L
#define REBOOT_CMD_RESTART 0x01234567L

#define FOLDVM_INIT_BANNER "foldvm-initramfs: /init reached user space; rebooting\n"

static long syscall3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

void _start(void) __attribute__((noreturn));

void _start(void)
{
	static const char msg[] = FOLDVM_INIT_BANNER;

	syscall3(SYS_write, 1, (long)msg, sizeof(msg) - 1);
	syscall3(SYS_sync, 0, 0, 0);
	for (;;)
		syscall3(SYS_reboot, REBOOT_MAGIC1, REBOOT_MAGIC2,
			 REBOOT_CMD_RESTART);
}
