/*  zk_meter — the throughput meter, the median and the HDR-style histogram.  */

#include "testutil.h"

#include <math.h>

Test (zk_meter, clock_is_monotonic_and_in_nanoseconds)
{
    int64_t before = zk_meter_now_ns ();
    int64_t wall_before = zclock_mono ();
    //  Wait (bounded) until a millisecond went by on czmq's clock.
    while (zclock_mono () - wall_before < 2)
        ;
    int64_t after = zk_meter_now_ns ();
    cr_assert_gt (after, before);
    cr_assert_geq (after - before, 1000000, "%" PRId64 " ns", after - before);
    cr_assert_lt (after - before, 10LL * 1000000000, "%" PRId64 " ns", after - before);
}

Test (zk_meter, counts_messages_and_bytes_between_first_and_stamp)
{
    zk_meter_t meter;
    zk_meter_reset (&meter);
    cr_assert_eq (zk_meter_rate (&meter), 0);
    cr_assert_eq (zk_meter_seconds (&meter), 0);
    zk_meter_count (&meter, 100);
    cr_assert_gt (meter.first_ns, 0);
    cr_assert_eq (zk_meter_rate (&meter), 0, "one message has no rate");
    for (int i = 0; i < 9; i++)
        zk_meter_count (&meter, 100);
    int64_t start = zclock_mono ();
    while (zclock_mono () - start < 5)
        ;
    zk_meter_stamp (&meter);
    cr_assert_eq (meter.messages, 10);
    cr_assert_eq (meter.bytes, 1000);
    double seconds = zk_meter_seconds (&meter);
    cr_assert_geq (seconds, 0.004);
    cr_assert_lt (seconds, 10);
    //  The first message opens the interval: 9 messages, 900 bytes in it.
    cr_assert_float_eq (zk_meter_rate (&meter), 9 / seconds, 1e-6 * 9 / seconds);
    cr_assert_float_eq (zk_meter_byte_rate (&meter), 900 / seconds, 1e-6 * 900 / seconds);
}

Test (zk_meter, median_of_odd_even_and_empty)
{
    double odd[] = {5, 1, 4, 2, 3};
    cr_assert_float_eq (zk_meter_median (odd, 5), 3, 1e-12);
    double even[] = {10, 1, 4, 2};
    cr_assert_float_eq (zk_meter_median (even, 4), 3, 1e-12);
    double one[] = {7};
    cr_assert_float_eq (zk_meter_median (one, 1), 7, 1e-12);
    cr_assert_eq (zk_meter_median (NULL, 0), 0);
}

Test (zk_histogram, small_values_are_exact_and_buckets_are_contiguous)
{
    for (uint64_t v = 0; v < 256; v++) {
        cr_assert_eq (zk_histogram_bucket (v), v);
        cr_assert_eq (zk_histogram_bucket_low (v), v);
        cr_assert_eq (zk_histogram_bucket_high (v), v);
    }
    //  Every bucket starts one past the previous one's end, up to 2^64 - 1.
    size_t buckets = zk_histogram_buckets ();
    for (size_t b = 1; b < buckets; b++)
        cr_assert_eq (zk_histogram_bucket_low (b), zk_histogram_bucket_high (b - 1) + 1,
                      "bucket %zu", b);
    cr_assert_eq (zk_histogram_bucket_high (buckets - 1), UINT64_MAX);
    cr_assert_eq (zk_histogram_bucket (UINT64_MAX), buckets - 1);
}

Test (zk_histogram, every_value_lands_in_its_bucket_within_precision)
{
    uint64_t values[] = {255,
                         256,
                         257,
                         511,
                         512,
                         1000,
                         123456,
                         999999999,
                         1ULL << 40,
                         (1ULL << 40) + 12345,
                         UINT64_MAX / 3,
                         UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint64_t v = values[i];
        size_t b = zk_histogram_bucket (v);
        cr_assert_leq (zk_histogram_bucket_low (b), v, "%" PRIu64, v);
        cr_assert_geq (zk_histogram_bucket_high (b), v, "%" PRIu64, v);
        long double width = zk_histogram_bucket_high (b) - zk_histogram_bucket_low (b) + 1;
        cr_assert_leq (width / v, 1.0L / 128, "%" PRIu64, v);
    }
}

Test (zk_histogram, empty_reports_zero)
{
    zk_histogram_t *h = zk_histogram_new ();
    cr_assert_not_null (h);
    cr_assert_eq (zk_histogram_count (h), 0);
    cr_assert_eq (zk_histogram_min (h), 0);
    cr_assert_eq (zk_histogram_max (h), 0);
    cr_assert_eq (zk_histogram_mean (h), 0);
    cr_assert_eq (zk_histogram_percentile (h, 50), 0);
    zk_histogram_destroy (&h);
    cr_assert_null (h);
    zk_histogram_destroy (&h);  //  safe on NULL
}

Test (zk_histogram, percentiles_of_a_uniform_spread)
{
    zk_histogram_t *h = zk_histogram_new ();
    //  1 .. 100000 ns once each: the p-th percentile is p * 1000.
    for (uint64_t v = 1; v <= 100000; v++)
        zk_histogram_record (h, v);
    cr_assert_eq (zk_histogram_count (h), 100000);
    cr_assert_eq (zk_histogram_min (h), 1);
    cr_assert_eq (zk_histogram_max (h), 100000);
    cr_assert_float_eq (zk_histogram_mean (h), 50000.5, 1e-6);
    double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double truth = ps[i] * 1000;
        uint64_t got = zk_histogram_percentile (h, ps[i]);
        //  Never below the truth, at most one bucket (1/128) above.
        cr_assert_geq ((double) got, truth, "p%g = %" PRIu64, ps[i], got);
        cr_assert_leq ((double) got, truth * (1 + 1.0 / 128), "p%g = %" PRIu64, ps[i], got);
    }
    cr_assert_eq (zk_histogram_percentile (h, 0), 1);
    cr_assert_eq (zk_histogram_percentile (h, -5), 1);
    cr_assert_eq (zk_histogram_percentile (h, 100), 100000);
    cr_assert_eq (zk_histogram_percentile (h, 250), 100000);
    cr_assert_eq (zk_histogram_percentile (h, NAN), 1);
    zk_histogram_destroy (&h);
}

Test (zk_histogram, a_percentile_is_clamped_to_the_recorded_range)
{
    zk_histogram_t *h = zk_histogram_new ();
    //  One value in a wide bucket: every percentile is that value, not
    //  the bucket's bounds.
    zk_histogram_record_n (h, 1000001, 3);
    cr_assert_eq (zk_histogram_count (h), 3);
    cr_assert_eq (zk_histogram_percentile (h, 50), 1000001);
    cr_assert_eq (zk_histogram_percentile (h, 99.9), 1000001);
    zk_histogram_record_n (h, 7, 0);  //  nothing
    cr_assert_eq (zk_histogram_count (h), 3);
    cr_assert_eq (zk_histogram_min (h), 1000001);
    zk_histogram_destroy (&h);
}

Test (zk_histogram, tail_percentiles_see_the_outliers)
{
    zk_histogram_t *h = zk_histogram_new ();
    //  990 fast round trips, 9 slow, 1 very slow.
    zk_histogram_record_n (h, 50000, 990);
    zk_histogram_record_n (h, 2000000, 9);
    zk_histogram_record (h, 90000000);
    //  Within the bucket of 50000 (its highest equivalent value).
    uint64_t p50 = zk_histogram_percentile (h, 50);
    cr_assert_geq (p50, 50000);
    cr_assert_leq (p50, 50000 + 50000 / 128);
    cr_assert_eq (zk_histogram_percentile (h, 99), p50);
    uint64_t p999 = zk_histogram_percentile (h, 99.9);
    cr_assert_geq (p999, 2000000);
    cr_assert_leq (p999, 2000000 + 2000000 / 128);
    cr_assert_eq (zk_histogram_percentile (h, 99.99), 90000000);
    cr_assert_eq (zk_histogram_max (h), 90000000);
    zk_histogram_destroy (&h);
}

Test (zk_histogram, merge_and_reset)
{
    zk_histogram_t *a = zk_histogram_new ();
    zk_histogram_t *b = zk_histogram_new ();
    zk_histogram_t *empty = zk_histogram_new ();
    for (uint64_t v = 1; v <= 500; v++)
        zk_histogram_record (a, v);
    for (uint64_t v = 501; v <= 1000; v++)
        zk_histogram_record (b, v);
    zk_histogram_merge (a, empty);
    cr_assert_eq (zk_histogram_count (a), 500);
    zk_histogram_merge (empty, b);  //  into an empty one: takes min and max
    cr_assert_eq (zk_histogram_min (empty), 501);
    cr_assert_eq (zk_histogram_max (empty), 1000);
    zk_histogram_merge (a, b);
    cr_assert_eq (zk_histogram_count (a), 1000);
    cr_assert_eq (zk_histogram_min (a), 1);
    cr_assert_eq (zk_histogram_max (a), 1000);
    cr_assert_float_eq (zk_histogram_mean (a), 500.5, 1e-9);
    uint64_t median = zk_histogram_percentile (a, 50);
    cr_assert_geq (median, 500);
    cr_assert_leq (median, 504);
    zk_histogram_reset (a);
    cr_assert_eq (zk_histogram_count (a), 0);
    cr_assert_eq (zk_histogram_percentile (a, 50), 0);
    zk_histogram_record (a, 42);
    cr_assert_eq (zk_histogram_min (a), 42);
    zk_histogram_destroy (&a);
    zk_histogram_destroy (&b);
    zk_histogram_destroy (&empty);
}

Test (zk_histogram, huge_values_and_counts_do_not_overflow)
{
    zk_histogram_t *h = zk_histogram_new ();
    zk_histogram_record_n (h, UINT64_MAX, 1ULL << 40);
    zk_histogram_record (h, 0);
    cr_assert_eq (zk_histogram_count (h), (1ULL << 40) + 1);
    cr_assert_eq (zk_histogram_min (h), 0);
    cr_assert_eq (zk_histogram_max (h), UINT64_MAX);
    cr_assert_eq (zk_histogram_percentile (h, 50), UINT64_MAX);
    cr_assert_gt (zk_histogram_mean (h), 1.8e19);
    zk_histogram_destroy (&h);
}
