/*  zk_meter — counters and latency histograms, for engines and zkit-bench.

    zk_meter_t counts messages and bytes between the first message and a
    stamp, and gives rates. It reads the clock only at the first message
    and when stamped, so it can sit on a hot path.

    zk_histogram_t records values (nanoseconds, or any unsigned quantity)
    in log-bucketed, HDR-style buckets: values below 256 exactly, larger
    ones within 1/128 (0.8%) of their value. Its memory is constant (about
    60 KiB) whatever it records; min, max, count and sum are exact.      */

#ifndef ZK_METER_H_INCLUDED
#define ZK_METER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Monotonic clock in nanoseconds (CLOCK_MONOTONIC: comparable between
//  processes on one machine).
int64_t zk_meter_now_ns (void);

//  A throughput meter. Zero-initialise it (or zk_meter_reset).
typedef struct {
    uint64_t messages;  //  counted so far
    uint64_t bytes;
    int64_t first_ns;  //  clock at the first message; 0 before it
    int64_t last_ns;   //  clock at the last stamp
} zk_meter_t;

void zk_meter_reset (zk_meter_t *self);
//  Count one message of size bytes. The first one starts the clock.
void zk_meter_count (zk_meter_t *self, size_t size);
//  Read the clock: the end of the measured interval, so far.
void zk_meter_stamp (zk_meter_t *self);
//  Seconds from the first message to the last stamp; 0 if not measured.
double zk_meter_seconds (const zk_meter_t *self);
//  Messages (bytes) per second over that interval. The first message
//  opens the interval, so it is not counted: (messages - 1) / seconds.
//  0 when fewer than two messages or no time was measured.
double zk_meter_rate (const zk_meter_t *self);
double zk_meter_byte_rate (const zk_meter_t *self);

//  The median of count values (sorts values in place); 0 if count is 0.
//  The mean of the two middle values when count is even.
double zk_meter_median (double *values, size_t count);

#define ZK_HISTOGRAM_SUB_BITS 7  //  2^7 sub-buckets per power of two: 0.8% precision

typedef struct _zk_histogram_t zk_histogram_t;

//  A new, empty histogram. Caller owns it; NULL if out of memory.
zk_histogram_t *zk_histogram_new (void);
void zk_histogram_destroy (zk_histogram_t **self_p);
//  Forget every value.
void zk_histogram_reset (zk_histogram_t *self);
//  Record value once / count times.
void zk_histogram_record (zk_histogram_t *self, uint64_t value);
void zk_histogram_record_n (zk_histogram_t *self, uint64_t value, uint64_t count);
//  Add every value of other to self.
void zk_histogram_merge (zk_histogram_t *self, const zk_histogram_t *other);

uint64_t zk_histogram_count (const zk_histogram_t *self);
//  Exact smallest / largest value recorded; 0 when empty.
uint64_t zk_histogram_min (const zk_histogram_t *self);
uint64_t zk_histogram_max (const zk_histogram_t *self);
//  Exact mean; 0 when empty.
double zk_histogram_mean (const zk_histogram_t *self);
//  The value at percentile (0 to 100; clamped): the highest value
//  equivalent (same bucket) to the smallest recorded value v such that at
//  least percentile% of the values are <= v, clamped to [min, max]. So it
//  is never below the true percentile and at most 0.8% above it.
//  0 when empty. percentile 0 gives min, 100 gives max.
uint64_t zk_histogram_percentile (const zk_histogram_t *self, double percentile);

//  The bucket index of value, and the lowest / highest value of a bucket
//  (for tests and exporters).
size_t zk_histogram_bucket (uint64_t value);
uint64_t zk_histogram_bucket_low (size_t bucket);
uint64_t zk_histogram_bucket_high (size_t bucket);
//  Number of buckets.
size_t zk_histogram_buckets (void);

#ifdef __cplusplus
}
#endif

#endif
