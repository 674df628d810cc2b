/*
 * virtio_mmio.c - the virtio-mmio transport, Version 2 registers.
 *
 * Everything a driver writes is a guest input: selectors are bounded,
 * queue registers change only while the queue is not ready, a queue is
 * made ready only when its rings lie inside RAM, FEATURES_OK sticks only
 * when the driver took a subset of the offer that includes VERSION_1, and
 * queues are served only after DRIVER_OK and before NEEDS_RESET.
 */
#include <stdio.h>
#include <string.h>
#include "devices/virtio_mmio.h"

void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_ops *ops,
		      void *dev, struct guest_mem *mem, uint64_t base,
		      uint64_t features)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	t->base = base;
	t->features = features;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (t->ops)
		pthread_mutex_destroy(&t->lock);
	t->ops = NULL;
}

void virtio_mmio_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

static uint64_t offered(const struct virtio_mmio *t)
{
	return t->features | (1ull << VIRTIO_F_VERSION_1);
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit)
{
	return bit < 64 && (t->drv_features >> bit) & 1;
}

bool virtio_mmio_live(const struct virtio_mmio *t)
{
	return (t->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(t->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

static void update_irq(struct virtio_mmio *t)
{
	int level = t->isr != 0;

	if (level != t->irq_level && t->set_irq)
		t->set_irq(t->irq_opaque, level);
	t->irq_level = level;
}

void virtio_mmio_used(struct virtio_mmio *t, unsigned q)
{
	if (q < VIRTIO_MMIO_MAX_QUEUES && virtq_wants_interrupt(&t->vq[q], t->mem)) {
		t->isr |= VIRTIO_MMIO_INT_VRING;
		update_irq(t);
	}
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->config_generation++;
	t->isr |= VIRTIO_MMIO_INT_CONFIG;
	update_irq(t);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why)
{
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	if (t->log) {
		char line[320];

		snprintf(line, sizeof(line), "%s: %s; the device needs a reset",
			 t->ops->name, why);
		t->log(t->log_opaque, line);
	}
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* The driver learns of it from the config change interrupt (2.1.2). */
	virtio_mmio_config_changed(t);
}

static void device_reset(struct virtio_mmio *t)
{
	t->status = 0;
	t->isr = 0;
	t->dev_features_sel = t->drv_features_sel = 0;
	t->drv_features = 0;
	t->queue_sel = 0;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		virtq_reset(&t->vq[q]);
	t->ops->reset(t->dev);
	update_irq(t);
}

static struct virtq *selected(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->nr_queues ? &t->vq[t->queue_sel] : NULL;
}

static void notify(struct virtio_mmio *t, uint32_t q)
{
	struct fv_error err = { 0 };

	if (q >= t->ops->nr_queues || !t->vq[q].ready || !virtio_mmio_live(t))
		return;
	if (t->ops->notify(t->dev, t, q, &err))
		virtio_mmio_needs_reset(t, err.msg);
}

void virtio_mmio_kick(struct virtio_mmio *t, unsigned q)
{
	pthread_mutex_lock(&t->lock);
	t->kicks_eventfd++;
	notify(t, q);
	pthread_mutex_unlock(&t->lock);
}

/* FEATURES_OK only for a subset of the offer with VERSION_1 (3.1.1): no
 * legacy interface here. */
static uint32_t status_accepted(struct virtio_mmio *t, uint32_t v)
{
	if ((v & VIRTIO_STATUS_FEATURES_OK) &&
	    !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((t->drv_features & ~offered(t)) ||
	     !virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1)))
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	/* DRIVER_OK needs FEATURES_OK; NEEDS_RESET is the device's to set. */
	if (!(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	return (v & ~VIRTIO_STATUS_NEEDS_RESET) |
	       (t->status & VIRTIO_STATUS_NEEDS_RESET);
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	bool was_live = virtio_mmio_live(t);

	if (v == 0) {
		device_reset(t);
		return;
	}
	/* 2.1.1: the driver never clears a status bit but by a reset; one
	 * that tries keeps them (else it could renegotiate features under
	 * queues already set up for the old ones). */
	t->status = status_accepted(t, (v & 0xff) | t->status);
	/* Buffers made available before DRIVER_OK are served now. */
	if (!was_live && virtio_mmio_live(t))
		for (unsigned q = 0; q < t->ops->nr_queues; q++)
			notify(t, q);
}

static void write_queue_ready(struct virtio_mmio *t, struct virtq *vq, uint32_t v)
{
	struct fv_error err = { 0 };

	if (!v) {
		vq->ready = false;
		return;
	}
	if (vq->ready)
		return;
	if (virtq_check(vq, t->mem, &err)) {
		virtio_mmio_needs_reset(t, err.msg);
		return;
	}
	vq->ready = true;
}

static void set_half(uint64_t *x, bool high, uint32_t v)
{
	if (high)
		*x = (*x & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*x = (*x & ~0xffffffffull) | v;
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *vq = selected(t);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* Only while negotiating (3.1.1 steps 4-5). */
		if (t->drv_features_sel < 2 &&
		    !(t->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&t->drv_features, t->drv_features_sel == 1, v);
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* The queue's index (no VIRTIO_F_NOTIFICATION_DATA here). */
		t->kicks_exit++;
		notify(t, v);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->isr &= ~v;
		update_irq(t);
		return;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		return;
	}
	/* The queue registers: only for a queue that exists and is not
	 * ready (4.2.3.2). */
	if (!vq || vq->ready) {
		if (vq && off == VIRTIO_MMIO_QUEUE_READY)
			write_queue_ready(t, vq, v);
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		vq->num = v <= t->ops->queue_max ? (uint16_t)v : 0;
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		write_queue_ready(t, vq, v);
		return;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&vq->desc_gpa, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
		return;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&vq->avail_gpa, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v);
		return;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&vq->used_gpa, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
		return;
	}
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *vq = selected(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_features_sel < 2 ?
		       (uint32_t)(offered(t) >> (32 * t->dev_features_sel)) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? t->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->isr;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	}
	return 0;
}

void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, bool is_write,
			uint8_t *data, unsigned len)
{
	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (len > 8 || c >= t->ops->config_len ||
		    len > t->ops->config_len - c) {
			if (!is_write)
				memset(data, 0, len);
		} else if (!is_write) {
			t->ops->config_read(t->dev, (uint32_t)c, data, len);
		} else if (t->ops->config_write) {
			t->ops->config_write(t->dev, (uint32_t)c, data, len);
		}
	} else if (len != 4 || (off & 3)) {
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;

		memcpy(&v, data, 4);
		reg_write(t, off, v);
	} else {
		uint32_t v = reg_read(t, off);

		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}
