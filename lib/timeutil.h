/* timeutil.h - the few time helpers every thread-waiting module needs. */
#ifndef FOLDVM_TIMEUTIL_H
#define FOLDVM_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* *ts = now on `clock` + ms (for pthread_cond_timedwait). */
static inline void fv_deadline_after(struct timespec *ts, clockid_t clock, int ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t fv_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
