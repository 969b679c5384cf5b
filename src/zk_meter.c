/*  zk_meter — counters and an HDR-style latency histogram.  */

#include "zk_classes.h"

#include <math.h>
#include <time.h>

#define SUB_BITS    ZK_HISTOGRAM_SUB_BITS
#define SUB_BUCKETS (1u << SUB_BITS)
//  Buckets: values below 2^(SUB_BITS+1) one each, then SUB_BUCKETS per
//  power of two up to 2^64.
#define BUCKETS ((size_t) (65 - SUB_BITS) * SUB_BUCKETS)

struct _zk_histogram_t {
    uint64_t count;
    uint64_t min, max;
    long double sum;  //  exact enough for a mean of 2^64 nanosecond values
    uint64_t buckets[BUCKETS];
};

int64_t
zk_meter_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  ---------------------------------------------------------------- meter

void
zk_meter_reset (zk_meter_t *self)
{
    assert (self);
    *self = (zk_meter_t){0};
}

void
zk_meter_count (zk_meter_t *self, size_t size)
{
    if (self->messages++ == 0) {
        self->first_ns = zk_meter_now_ns ();
        self->last_ns = self->first_ns;
    }
    self->bytes += size;
}

void
zk_meter_stamp (zk_meter_t *self)
{
    assert (self);
    self->last_ns = zk_meter_now_ns ();
}

double
zk_meter_seconds (const zk_meter_t *self)
{
    assert (self);
    if (!self->messages || self->last_ns <= self->first_ns)
        return 0;
    return (double) (self->last_ns - self->first_ns) / 1e9;
}

double
zk_meter_rate (const zk_meter_t *self)
{
    double seconds = zk_meter_seconds (self);
    return seconds > 0 && self->messages > 1 ? (double) (self->messages - 1) / seconds : 0;
}

double
zk_meter_byte_rate (const zk_meter_t *self)
{
    double seconds = zk_meter_seconds (self);
    if (seconds <= 0 || self->messages < 2)
        return 0;
    //  The first message opened the interval: leave out its share.
    double per_message = (double) self->bytes / (double) self->messages;
    return (double) (self->bytes - per_message) / seconds;
}

static int
s_compare_doubles (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

double
zk_meter_median (double *values, size_t count)
{
    if (!count)
        return 0;
    assert (values);
    qsort (values, count, sizeof *values, s_compare_doubles);
    if (count % 2)
        return values[count / 2];
    return (values[count / 2 - 1] + values[count / 2]) / 2;
}

//  ---------------------------------------------------------------- histogram

/*  The layout is HDR's: a value v whose highest set bit is e (e >= SUB_BITS)
    falls in bucket (e - SUB_BITS) * SUB_BUCKETS + (v >> (e - SUB_BITS)):
    its top SUB_BITS+1 bits. Below 2^(SUB_BITS+1) that is v itself, so
    small values are exact and each power of two above has SUB_BUCKETS
    buckets of equal width 2^(e - SUB_BITS): at most 1/SUB_BUCKETS of v. */
size_t
zk_histogram_bucket (uint64_t value)
{
    if (value < 2 * SUB_BUCKETS)
        return (size_t) value;
    unsigned top = 63 - (unsigned) __builtin_clzll (value);
    unsigned shift = top - SUB_BITS;
    return (size_t) shift * SUB_BUCKETS + (size_t) (value >> shift);
}

uint64_t
zk_histogram_bucket_low (size_t bucket)
{
    assert (bucket < BUCKETS);
    if (bucket < 2 * SUB_BUCKETS)
        return bucket;
    size_t shift = bucket / SUB_BUCKETS - 1;
    return (uint64_t) (bucket - shift * SUB_BUCKETS) << shift;
}

uint64_t
zk_histogram_bucket_high (size_t bucket)
{
    assert (bucket < BUCKETS);
    if (bucket < 2 * SUB_BUCKETS)
        return bucket;
    size_t shift = bucket / SUB_BUCKETS - 1;
    return zk_histogram_bucket_low (bucket) + (((uint64_t) 1 << shift) - 1);
}

size_t
zk_histogram_buckets (void)
{
    return BUCKETS;
}

zk_histogram_t *
zk_histogram_new (void)
{
    zk_histogram_t *self = calloc (1, sizeof *self);
    if (!self)
        zk_error ("histogram: out of memory");
    return self;
}

void
zk_histogram_destroy (zk_histogram_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
zk_histogram_reset (zk_histogram_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

void
zk_histogram_record_n (zk_histogram_t *self, uint64_t value, uint64_t count)
{
    assert (self);
    if (!count)
        return;
    if (!self->count || value < self->min)
        self->min = value;
    if (!self->count || value > self->max)
        self->max = value;
    self->count += count;
    self->sum += (long double) value * count;
    self->buckets[zk_histogram_bucket (value)] += count;
}

void
zk_histogram_record (zk_histogram_t *self, uint64_t value)
{
    zk_histogram_record_n (self, value, 1);
}

void
zk_histogram_merge (zk_histogram_t *self, const zk_histogram_t *other)
{
    assert (self);
    assert (other);
    if (!other->count)
        return;
    if (!self->count || other->min < self->min)
        self->min = other->min;
    if (!self->count || other->max > self->max)
        self->max = other->max;
    self->count += other->count;
    self->sum += other->sum;
    for (size_t i = 0; i < BUCKETS; i++)
        self->buckets[i] += other->buckets[i];
}

uint64_t
zk_histogram_count (const zk_histogram_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
zk_histogram_min (const zk_histogram_t *self)
{
    assert (self);
    return self->min;
}

uint64_t
zk_histogram_max (const zk_histogram_t *self)
{
    assert (self);
    return self->max;
}

double
zk_histogram_mean (const zk_histogram_t *self)
{
    assert (self);
    return self->count ? (double) (self->sum / self->count) : 0;
}

uint64_t
zk_histogram_percentile (const zk_histogram_t *self, double percentile)
{
    assert (self);
    if (!self->count)
        return 0;
    if (!(percentile > 0))  //  also NaN
        return self->min;
    if (percentile >= 100)
        return self->max;
    //  The rank of the wanted value, 1-based: ceil (p% of count). 99.9 is
    //  not exact in binary: shave the rounding error off before ceil, or
    //  p99.9 of 1000 values would be the 1000th.
    long double exact = (long double) percentile / 100 * self->count;
    uint64_t rank = (uint64_t) ceill (exact - exact * 1e-12L);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        seen += self->buckets[i];
        if (seen >= rank) {
            uint64_t value = zk_histogram_bucket_high (i);
            if (value > self->max)
                value = self->max;
            if (value < self->min)
                value = self->min;
            return value;
        }
    }
    return self->max;
}
