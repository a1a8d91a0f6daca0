/*
 * skewclock: an LD_PRELOAD library that shifts one process's wall clock, as an NTP step would.
 *
 * The offset, in whole seconds (e.g. "300" or "-300"), is read from the file named by
 * SKEWCLOCK_FILE, at most every 100 ms, so a test can step the clock of a running process
 * forward and back by rewriting that file. Only the wall clock moves (CLOCK_REALTIME and its
 * coarse variant, gettimeofday, time); CLOCK_MONOTONIC and every timer stay untouched, as on a
 * real machine whose clock is stepped. A missing or unreadable file means no offset.
 *
 * The kernel's own wall clock does not move, so waits with an absolute CLOCK_REALTIME deadline
 * (pthread_cond_timedwait on a default condition variable, C11 cnd_timedwait: librdkafka's
 * waits) get the offset taken back off their deadline; otherwise a clock stepped back would
 * make every such wait time out at once, which a real step does not do. Rust's own locks and
 * timers use futexes and CLOCK_MONOTONIC and are not affected.
 *
 * Built by scripts/faults/faults.py: cc -shared -fPIC -O2 -o skewclock.so skewclock.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <threads.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void) {
    static clock_gettime_fn fn;
    clock_gettime_fn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    return f;
}

static long long read_offset_file(void) {
    const char *path = getenv("SKEWCLOCK_FILE");
    long long v = 0;
    FILE *f;
    if (!path || !(f = fopen(path, "re"))) return 0;
    if (fscanf(f, "%lld", &v) != 1) v = 0;
    fclose(f);
    return v;
}

/* The offset in seconds, re-read when the cached value is older than 100 ms (monotonic). */
static long long offset_seconds(void) {
    static long long cached, read_at_ms = -1000000;
    struct timespec now;
    long long now_ms;
    if (real_clock_gettime()(CLOCK_MONOTONIC_COARSE, &now) != 0) return 0;
    now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (now_ms - __atomic_load_n(&read_at_ms, __ATOMIC_ACQUIRE) >= 100) {
        __atomic_store_n(&cached, read_offset_file(), __ATOMIC_RELEASE);
        __atomic_store_n(&read_at_ms, now_ms, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int r = real_clock_gettime()(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset_seconds();
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    if (tv != NULL) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

static struct timespec unshift(const struct timespec *abstime) {
    struct timespec t = *abstime;
    t.tv_sec -= offset_seconds();
    return t;
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *abstime) {
    static int (*real)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
    struct timespec t = unshift(abstime);
    if (!real) real = dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    return real(cond, mutex, &t);
}

int cnd_timedwait(cnd_t *cond, mtx_t *mutex, const struct timespec *abstime) {
    static int (*real)(cnd_t *, mtx_t *, const struct timespec *);
    struct timespec t = unshift(abstime);
    if (!real) real = dlsym(RTLD_NEXT, "cnd_timedwait");
    return real(cond, mutex, &t);
}
