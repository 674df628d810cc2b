/*
 * payload.c - the foldvm test payload: a freestanding CPL3 program that runs
 * on every vCPU of a guest and executes commands the host hands it through
 * the testdev mailbox (see testdev_abi.h for the protocol).
 *
 * This file holds the entry point, the config check, the command loop and
 * FAULT; payload.h lists the other parts and gives the environment and
 * shared-state rules they all follow.
 */
#include "payload.h"

/* start.S hard-codes these (it cannot include testdev_abi.h). */
_Static_assert(FV_EXIT_PORT == 0x0514u, "start.S exit port");
_Static_assert(FV_EXIT_MAGIC == 0x0e1du, "start.S exit magic");
_Static_assert(FV_PAGE_WORDS * sizeof(uint64_t) == FV_PAGE_SIZE, "page words");

void payload_main(uint64_t vcpu, const struct fv_guest_config *cfg);

/* ------------------------------------------------------------------------
 * Config validation: catch a bad host config with a readable abort rather
 * than a triple fault or a stray MMIO exit.
 */

struct region {
	const char *name;
	uint64_t gpa;
	uint64_t bytes;
};

static _Noreturn void config_abort(const char *what, const char *name)
{
	char buf[256];
	struct strbuf sb;

	sb_init(&sb, buf, sizeof(buf));
	sb_puts(&sb, FV_WHERE "bad config: ");
	sb_puts(&sb, name);
	sb_puts(&sb, " region ");
	sb_puts(&sb, what);
	guest_abort(buf);
}

static void check_config(uint64_t vcpu, const struct fv_guest_config *cfg)
{
	struct region r[7] = {
		{ "meta", cfg->meta_gpa, cfg->meta_size },
		{ "data", cfg->data_gpa, cfg->data_pages * FV_PAGE_SIZE },
		{ "race", cfg->race_gpa, cfg->race_pages * FV_PAGE_SIZE },
		{ "probe", cfg->probe_gpa, cfg->probe_pages * FV_PAGE_SIZE },
		{ "blob", cfg->blob_gpa, cfg->blob_pages * FV_PAGE_SIZE },
		{ "blob-starts", cfg->blob_starts_gpa, cfg->blob_starts_gpa ?
		  fv_blob_starts_pages(cfg->blob_pages) * FV_PAGE_SIZE : 0 },
		{ "virtio", cfg->virtio_gpa, cfg->virtio_pages * FV_PAGE_SIZE },
	};

	GUEST_ASSERT(cfg->magic == FV_CONFIG_MAGIC, "bad config magic");
	GUEST_ASSERT(cfg->abi_version == FV_ABI_VERSION, "bad ABI version");
	GUEST_ASSERT(cfg->nr_vcpus >= 1 && cfg->nr_vcpus <= FV_MAX_VCPUS,
		     "bad nr_vcpus");
	GUEST_ASSERT(vcpu < cfg->nr_vcpus, "vCPU index >= nr_vcpus");
	GUEST_ASSERT(this_vcpu() == vcpu, "RSP is not in this vCPU's stack");
	/* page counts that would overflow the byte sizes above */
	GUEST_ASSERT(cfg->data_pages <= UINT32_MAX, "too many data pages");
	GUEST_ASSERT((cfg->race_pages | cfg->probe_pages | cfg->blob_pages) <=
		     UINT32_MAX, "region too large");
	GUEST_ASSERT(cfg->content.layout <= FV_LAYOUT_CLONES, "unknown layout");
	GUEST_ASSERT(cfg->virtio_mmio_nr <= FV_VIRTIO_MAX_DEVICES &&
		     cfg->virtio_pages <= UINT32_MAX, "bad virtio config");
	GUEST_ASSERT(cfg->data_pages == 0 ||
		     cfg->meta_size >= fv_meta_size(cfg->data_pages),
		     "meta region smaller than fv_meta_size(data_pages)");

	for (int i = 0; i < 7; i++) {
		if (r[i].bytes == 0)
			continue;
		if (r[i].gpa & (FV_PAGE_SIZE - 1))
			config_abort("not page aligned", r[i].name);
		if (r[i].gpa < FV_META_GPA)
			config_abort("below FV_META_GPA", r[i].name);
		if (r[i].gpa > cfg->mem_size ||
		    r[i].bytes > cfg->mem_size - r[i].gpa)
			config_abort("beyond guest RAM", r[i].name);
		for (int j = 0; j < i; j++) {
			if (r[j].bytes && r[i].gpa < r[j].gpa + r[j].bytes &&
			    r[j].gpa < r[i].gpa + r[i].bytes)
				config_abort("overlaps another region", r[i].name);
		}
	}
}

/* FAULT: no IDT, so #UD escalates to a triple fault (shutdown exit). */
static _Noreturn void cmd_fault(void)
{
	__asm__ volatile("ud2");
	__builtin_unreachable();
}

/* ------------------------------------------------------------------------
 * Main loop.
 */

static void announce(const struct fv_guest_config *cfg)
{
	char buf[128];
	struct strbuf sb;

	sb_init(&sb, buf, sizeof(buf));
	sb_puts(&sb, "foldvm payload: vcpu 0 of ");
	sb_putu(&sb, cfg->nr_vcpus);
	sb_puts(&sb, " ready, data ");
	sb_putu(&sb, cfg->data_pages);
	sb_puts(&sb, " pages\n");
	serial_puts(buf);
}

/* Report the last command's result and wait for the next command. */
static void next_command(struct vcpu *v)
{
	volatile struct fv_mailbox *mb = v->mb;

	mb->last_cmd = v->cmd;
	mb->status = v->status;
	for (int i = 0; i < 8; i++)
		mb->result[i] = v->result[i];

	outl(FV_DOORBELL_PORT, FV_REQ_NEXT);

	v->cmd = mb->cmd;
	for (int i = 0; i < 8; i++)
		v->arg[i] = mb->arg[i];
	v->status = FV_STATUS_OK;
	for (int i = 0; i < 8; i++)
		v->result[i] = 0;
}

/* The host makes a call its sandbox should stop and says how it went. */
static void cmd_sandbox_probe(struct vcpu *v)
{
	volatile struct fv_mailbox *mb = v->mb;

	mb->result[0] = v->arg[0];
	outl(FV_DOORBELL_PORT, FV_REQ_SANDBOX_PROBE);
	v->result[0] = v->arg[0];
	v->result[1] = mb->arg[1];
}

/* What each command of the host's runs (guest-tools/testdev_abi.h);
 * NONE, FAULT and EXIT are run_command's own. */
static void (*const cmd_table[])(struct vcpu *v) = {
	[FV_CMD_FILL] = cmd_fill,
	[FV_CMD_VERIFY] = cmd_verify,
	[FV_CMD_CHURN] = cmd_churn,
	[FV_CMD_RACE] = cmd_race,
	[FV_CMD_RACE_SETTLE] = cmd_race_settle,
	[FV_CMD_MEASURE_WRITE] = cmd_measure_write,
	[FV_CMD_SANDBOX_PROBE] = cmd_sandbox_probe,
	[FV_CMD_VIRTIO_INIT] = cmd_virtio_init,
	[FV_CMD_BLK] = cmd_blk,
	[FV_CMD_BLK_BAD] = cmd_blk_bad,
	[FV_CMD_BALLOON_ADJUST] = cmd_balloon_adjust,
	[FV_CMD_BALLOON_REPORT] = cmd_balloon_report,
	[FV_CMD_BALLOON_STATS] = cmd_balloon_stats,
	[FV_CMD_NET_SEND] = cmd_net_send,
	[FV_CMD_NET_RECV] = cmd_net_recv,
	[FV_CMD_ECHO] = cmd_echo,
};

static void run_command(struct vcpu *v)
{
	if (v->cmd == FV_CMD_NONE)
		return;  /* nothing to do: report OK and ask again */
	if (v->cmd == FV_CMD_FAULT)
		cmd_fault();
	if (v->cmd == FV_CMD_EXIT)
		fv_exit_forever();
	if (v->cmd < sizeof(cmd_table) / sizeof(cmd_table[0]) && cmd_table[v->cmd])
		cmd_table[v->cmd](v);
	else
		v->status = FV_STATUS_BAD_COMMAND;
}

void payload_main(uint64_t vcpu, const struct fv_guest_config *cfg)
{
	struct vcpu v;

	/* Without a valid index there is no mailbox to complain through. */
	if (vcpu >= FV_MAX_VCPUS)
		fv_exit_forever();
	check_config(vcpu, cfg);

	memset(&v, 0, sizeof(v));
	v.index = vcpu;
	v.cfg = cfg;
	v.mb = mailbox_of(vcpu);

	if (vcpu == 0) {
		/* vCPU 0's shared state; other vCPUs never touch it. */
		cmd_data_init();
		announce(cfg);
	}

	for (;;) {
		next_command(&v);
		run_command(&v);
	}
}
