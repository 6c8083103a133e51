/* SPDX-License-Identifier: Apache-2.0
 *
 * functions.c - the arithmetic of PromQL's functions (functions.h), written
 * to give the same bits as Prometheus 2.42's promql/functions.go and
 * promql/quantile.go on amd64.  To get there the floating-point operations
 * happen in Prometheus's order: Kahan-compensated sums where it uses
 * kahanSumInc (sum_over_time, avg_over_time's incremental mean,
 * stddev/stdvar's Welford updates, the regression sums of deriv and
 * predict_linear), Go's Duration.Seconds() split of a range into whole and
 * fractional seconds, Go's math.Max/Min NaN and signed-zero rules for the
 * clamps, Go's own Log (go_log: its amd64 assembly's method and order)
 * under ln, log2 and log10, and Go's calendar arithmetic (time.absDate)
 * for the date functions.  What does not match to the bit: Go's
 * exp/pow/sin/... implementations differ from glibc's in the last place on
 * some inputs (exp on about 13 %, pow on most; far inside the conformance
 * tolerance, visible only where an expression magnifies them, as a % b of a
 * large a does).  Go's amd64 Exp, which its Pow calls, takes fused
 * multiply-adds when the CPU has them, so Prometheus's own bits there
 * depend on the machine.  And Go's unstable sort orders equal `le` buckets
 * arbitrarily past 12 buckets, which changes only the order in which
 * duplicate buckets are summed.
 *
 * The build must not contract a*b+c into fused multiply-adds (Go on amd64
 * does not): query/CMakeLists.txt builds this file with -ffp-contract=off.
 *
 * Not here: native histograms (histogram_count/sum/fraction, and rate over
 * histogram samples), label functions, sort, absent*, time(), timestamp()
 * and the anomaly functions: they concern series, labels or timestamps,
 * which are the evaluator's business.
 */
#include "functions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_error.h"

/* ---- shared numerics ------------------------------------------------- */

/* Neumaier's variant of Kahan summation, Prometheus's kahanSumInc: adds inc
 * to *sum and the lost low-order part to *c.  The caller's result is
 * sum + c (or sum alone when sum is infinite). */
static void kahan_inc(double inc, double *sum, double *c) {
    double t = *sum + inc;
    if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* Go's time.Duration.Seconds() for a duration of ms milliseconds: whole
 * seconds plus the nanosecond remainder divided by 1e9, which can differ
 * from ms / 1000.0 in the last bit for very long ranges. */
static double duration_seconds(int64_t ms) {
    int64_t sec = ms / 1000;
    int64_t nsec = (ms % 1000) * 1000000;
    return (double)sec + (double)nsec / 1e9;
}

/* Go's math.Max and math.Min: an infinity of the right sign wins over NaN,
 * NaN wins over numbers, +0 is larger than -0. */
static double go_max(double x, double y) {
    if (isinf(x) && x > 0) return x;
    if (isinf(y) && y > 0) return y;
    if (isnan(x) || isnan(y)) return NAN;
    if (x == 0 && x == y) return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double go_min(double x, double y) {
    if (isinf(x) && x < 0) return x;
    if (isinf(y) && y < 0) return y;
    if (isnan(x) || isnan(y)) return NAN;
    if (x == 0 && x == y) return signbit(x) ? x : y;
    return x < y ? x : y;
}

/* Go's math.Log as Prometheus 2.42 runs it (Debian's build, Go 1.19 on
 * amd64: the assembly of log_amd64.s), so that ln, log2 and log10 agree
 * with Prometheus to the bit.  Glibc's log, more often correctly rounded,
 * gave another last bit on 2.2 % of 2 million sampled inputs, and log10 as
 * log2(x) log10(2) (not Go's formula) on 32 %; this gives Go's bits on all
 * of them and on 3 million random bit patterns, subnormals included.
 *
 * The method and its coefficients are fdlibm's e_log.c (Sun Microsystems,
 * 1993): x = 2^k (1 + f) with 1 + f in (sqrt(2)/2, sqrt(2)], s = f / (2 +
 * f), log(1 + f) = f - (hfsq - s (hfsq + R)) with hfsq = f^2 / 2 and R a
 * polynomial in s^2, and k ln 2 in two parts.  Evaluated in the assembly's
 * order, one rounding per operation (this file is built with
 * -ffp-contract=off).  Like the assembly, the reduction takes the exponent
 * field as it is, so a subnormal x (below 2.2e-308) gets Go's answer, not
 * its logarithm. */
static double go_log(double x) {
    static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10,
                        l1 = 6.666666666666735130e-01, l2 = 3.999999999940941908e-01,
                        l3 = 2.857142874366239149e-01, l4 = 2.222219843214978396e-01,
                        l5 = 1.818357216161805012e-01, l6 = 1.531383769920937332e-01,
                        l7 = 1.479819860511658591e-01;
    uint64_t b = sm_f64_bits(x);
    if ((b & ~(1ull << 63)) == 0) return -INFINITY;
    if (b >> 63) return NAN;
    if (b >= 0x7FF0000000000000ull) return x; /* +Inf, NaN */
    double f1 = sm_f64_from_bits((b & 0x000FFFFFFFFFFFFFull) | 0x3FE0000000000000ull);
    double k = (double)((int)((b >> 52) & 0x7FF) - 0x3FE);
    if (f1 <= 7.07106781186547524401e-01) {
        f1 *= 2;
        k -= 1;
    }
    double f = f1 - 1, s = f / (2 + f), s2 = s * s, s4 = s2 * s2;
    double t1 = s2 * (l1 + s4 * (l3 + s4 * (l5 + s4 * l7)));
    double t2 = s4 * (l2 + s4 * (l4 + s4 * l6));
    double r = t1 + t2, hfsq = 0.5 * f * f;
    return k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f);
}

/* Go's math.Log2: exact for powers of two, else Log(frac) / ln 2 + exp. */
static double go_log2(double x) {
    int e = 0;
    double frac = frexp(x, &e);
    if (frac == 0.5) return (double)(e - 1);
    return go_log(frac) * 1.44269504088896340735992468100189214 + (double)e;
}

/* Go's math.Log10: Log(x) / ln 10, as Log(x) * (1 / ln 10). */
static double go_log10(double x) { return go_log(x) * 0.434294481903251827651128918916605082; }

/* Sort order of Prometheus's vectorByValueHeap: NaN first, then ascending. */
static int cmp_value(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a)) return isnan(b) ? 0 : -1;
    if (isnan(b)) return 1;
    return (a > b) - (a < b);
}

/* ---- quantiles (quantile.go) ------------------------------------------ */

double fn_quantile(double q, double *vs, size_t n) {
    if (n == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(vs, n, sizeof *vs, cmp_value);
    double nf = (double)n;
    double rank = q * (nf - 1);
    double lower = go_max(0, floor(rank));
    double upper = go_min(nf - 1, lower + 1);
    double weight = rank - floor(rank);
    return vs[(size_t)lower] * (1 - weight) + vs[(size_t)upper] * weight;
}

static void bucket_swap(double *le, double *counts, size_t i, size_t j) {
    double t = le[i];
    le[i] = le[j];
    le[j] = t;
    t = counts[i];
    counts[i] = counts[j];
    counts[j] = t;
}

static void bucket_sift(double *le, double *counts, size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && le[child] < le[child + 1]) child++;
        if (!(le[root] < le[child])) return;
        bucket_swap(le, counts, root, child);
        root = child;
    }
}

/* Sort buckets by upper bound.  Up to 12 buckets this is the insertion sort
 * Go's sort.Sort uses for short inputs, so duplicate bounds keep Go's order
 * (their counts are summed in that order); longer inputs use heapsort, which
 * agrees with Go whenever the bounds are distinct. */
static void buckets_sort(double *le, double *counts, size_t n) {
    if (n <= 12) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && le[j] < le[j - 1]; j--) bucket_swap(le, counts, j, j - 1);
        return;
    }
    for (size_t i = n / 2; i-- > 0;) bucket_sift(le, counts, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        bucket_swap(le, counts, 0, end);
        bucket_sift(le, counts, 0, end);
    }
}

double fn_histogram_quantile(double q, double *le, double *counts, size_t n) {
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (n == 0) return NAN;
    buckets_sort(le, counts, n);
    if (!(isinf(le[n - 1]) && le[n - 1] > 0)) return NAN;

    /* coalesceBuckets: merge equal upper bounds, summing their counts. */
    size_t m = 0;
    double last_le = le[0], last_count = counts[0];
    for (size_t i = 1; i < n; i++) {
        if (le[i] == last_le) {
            last_count += counts[i];
        } else {
            le[m] = last_le;
            counts[m] = last_count;
            m++;
            last_le = le[i];
            last_count = counts[i];
        }
    }
    le[m] = last_le;
    counts[m] = last_count;
    n = m + 1;

    /* ensureMonotonic: the envelope of the cumulative counts. */
    double max = counts[0];
    for (size_t i = 1; i < n; i++) {
        if (counts[i] > max)
            max = counts[i];
        else if (counts[i] < max)
            counts[i] = max;
    }

    if (n < 2) return NAN;
    double observations = counts[n - 1];
    if (observations == 0) return NAN;
    double rank = q * observations;
    /* Go's sort.Search over the first n-1 buckets, probe for probe: the
     * first with count >= rank.  Its exact probes matter when a NaN count
     * breaks the monotonicity ensureMonotonic promised. */
    size_t b = 0, hi = n - 1;
    while (b < hi) {
        size_t mid = b + (hi - b) / 2;
        if (counts[mid] >= rank)
            hi = mid;
        else
            b = mid + 1;
    }
    if (b == n - 1) return le[n - 2];
    if (b == 0 && le[0] <= 0) return le[0];
    double bucket_start = 0, bucket_end = le[b], count = counts[b];
    if (b > 0) {
        bucket_start = le[b - 1];
        count -= counts[b - 1];
        rank -= counts[b - 1];
    }
    return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

/* ---- range functions -------------------------------------------------- */

/* rate, increase, delta (extrapolatedRate).  Needs two samples. */
/* Whether any sample is below the one before it.  Most windows have no
 * reset, and this test has no branch per sample (four independent
 * compares per round), so the adding loop, whose order must stay
 * Prometheus's, runs only for the windows that need it. */
static bool counter_has_reset(const double *v, size_t n) {
    int r0 = 0, r1 = 0, r2 = 0, r3 = 0;
    size_t i = 1;
    for (; i + 4 <= n; i += 4) {
        r0 |= v[i] < v[i - 1];
        r1 |= v[i + 1] < v[i];
        r2 |= v[i + 2] < v[i + 1];
        r3 |= v[i + 3] < v[i + 2];
    }
    for (; i < n; i++) r0 |= v[i] < v[i - 1];
    return (r0 | r1 | r2 | r3) != 0;
}

/* (sampled + the extrapolation at both ends) / sampled: funcExtrapolatedRate's
 * factor before the division by the range. */
static double extrapolation_factor(double to_start, double to_end, double sampled, double avg_step) {
    double threshold = avg_step * 1.1;
    double interval = sampled;
    if (to_start < threshold)
        interval += to_start;
    else
        interval += avg_step / 2;
    if (to_end < threshold)
        interval += to_end;
    else
        interval += avg_step / 2;
    return interval / sampled;
}

static int extrapolated_rate(const fn_window *w, bool is_counter, bool is_rate, double *out) {
    size_t n = w->n;
    if (n < 2) return 0;
    const sm_ms_t *t = w->t;
    const double *v = w->v;
    double result = v[n - 1] - v[0];
    if (is_counter && !w->no_drops && counter_has_reset(v, n)) {
        double prev = v[0];
        for (size_t i = 1; i < n; i++) {
            if (v[i] < prev) result += prev;
            prev = v[i];
        }
    }
    /* The same divisions, in the same order, as without the memo: it only
     * skips repeating them for a window of the same shape. */
    fn_rate_memo local, *m = w->memo ? w->memo : &local;
    int64_t d_start = t[0] - w->start, d_end = w->end - t[n - 1], d_sampled = t[n - 1] - t[0];
    int64_t range_ms = w->end - w->start;
    if (!w->memo || !m->valid || m->n != n || m->d_start != d_start || m->d_end != d_end ||
        m->d_sampled != d_sampled || m->range_ms != range_ms) {
        m->valid = true;
        m->n = n;
        m->d_start = d_start;
        m->d_end = d_end;
        m->d_sampled = d_sampled;
        m->range_ms = range_ms;
        m->to_start = (double)d_start / 1000;
        m->to_end = (double)d_end / 1000;
        m->sampled = (double)d_sampled / 1000;
        m->avg_step = m->sampled / (double)(n - 1);
        m->range_s = duration_seconds(range_ms);
        m->factor = extrapolation_factor(m->to_start, m->to_end, m->sampled, m->avg_step);
        m->factor_rate = m->factor / m->range_s;
        m->zero_ratio = m->sampled > 0 ? 2 * m->to_start / m->sampled + 1 : INFINITY;
    }
    double factor = is_rate ? m->factor_rate : m->factor;
    if (is_counter && result > 0 && v[0] >= 0) {
        /* A counter cannot go below zero: extrapolate at most to the
         * time it would have been zero.  When v[0] is at least
         * (2 to_start / sampled + 1) times the increase, to_zero is above
         * to_start whatever the rounding (the margin is a factor of two),
         * so the division can be skipped: that is every counter whose
         * total dwarfs its increase over the window. */
        double sampled = m->sampled, to_start = m->to_start;
        if (!(v[0] >= result * m->zero_ratio)) {
            double to_zero = sampled * (v[0] / result);
            if (to_zero < to_start) {
                factor = extrapolation_factor(to_zero, m->to_end, sampled, m->avg_step);
                if (is_rate) factor /= m->range_s;
            }
        }
    }
    *out = result * factor;
    return 1;
}

/* irate, idelta (instantValue): the last two samples. */
static int instant_value(const fn_window *w, bool is_rate, double *out) {
    size_t n = w->n;
    if (n < 2) return 0;
    double last = w->v[n - 1], prev = w->v[n - 2];
    double result = (is_rate && last < prev) ? last : last - prev;
    sm_ms_t interval = w->t[n - 1] - w->t[n - 2];
    if (interval == 0) return 0;
    if (is_rate) result /= (double)interval / 1000;
    *out = result;
    return 1;
}

/* Double exponential smoothing (funcHoltWinters and calcTrendValue). */
static int holt_winters(const fn_window *w, double sf, double tf, double *out) {
    size_t n = w->n;
    if (n < 2) return 0;
    const double *v = w->v;
    double s0 = 0, s1 = v[0], b = v[1] - v[0];
    for (size_t i = 1; i < n; i++) {
        double x = sf * v[i];
        if (i - 1 != 0) b = tf * (s1 - s0) + (1 - tf) * b;
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    *out = s1;
    return 1;
}

/* Least squares fit of v against (t - intercept_ms) seconds, with
 * Kahan-compensated sums; a constant series has slope 0 and its value as
 * intercept (NaN for both when that value is infinite). */
static void linear_regression(const fn_window *w, sm_ms_t intercept_ms, double *slope,
                              double *intercept) {
    double n = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0;
    double sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
    double init_y = w->v[0];
    bool const_y = true;
    for (size_t i = 0; i < w->n; i++) {
        double y = w->v[i];
        if (const_y && i > 0 && y != init_y) const_y = false;
        n += 1.0;
        double x = (double)(w->t[i] - intercept_ms) / 1e3;
        kahan_inc(x, &sum_x, &c_x);
        kahan_inc(y, &sum_y, &c_y);
        kahan_inc(x * y, &sum_xy, &c_xy);
        kahan_inc(x * x, &sum_x2, &c_x2);
    }
    if (const_y) {
        if (isinf(init_y)) {
            *slope = NAN;
            *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = init_y;
        }
        return;
    }
    sum_x = sum_x + c_x;
    sum_y = sum_y + c_y;
    sum_xy = sum_xy + c_xy;
    sum_x2 = sum_x2 + c_x2;
    double cov_xy = sum_xy - sum_x * sum_y / n;
    double var_x = sum_x2 - sum_x * sum_x / n;
    *slope = cov_xy / var_x;
    *intercept = sum_y / n - *slope * sum_x / n;
}

/* avg_over_time: an incremental, compensated mean that stays at an
 * infinity once reached instead of turning it into NaN. */
static double avg_over_time(const fn_window *w) {
    double mean = 0, count = 0, c = 0;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->v[i];
        count++;
        if (isinf(mean)) {
            if (isinf(v) && (mean > 0) == (v > 0)) continue;
            if (!isinf(v) && !isnan(v)) continue;
        }
        kahan_inc(v / count - mean / count, &mean, &c);
    }
    if (isinf(mean)) return mean;
    return mean + c;
}

static double sum_over_time(const fn_window *w) {
    double sum = 0, c = 0;
    for (size_t i = 0; i < w->n; i++) kahan_inc(w->v[i], &sum, &c);
    if (isinf(sum)) return sum;
    return sum + c;
}

/* Welford's running variance with compensated updates (stdvar_over_time;
 * stddev_over_time is its square root). */
static double stdvar_over_time(const fn_window *w) {
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->v[i];
        count++;
        double delta = v - (mean + c_mean);
        kahan_inc(delta / count, &mean, &c_mean);
        kahan_inc(delta * (v - (mean + c_mean)), &aux, &c_aux);
    }
    return (aux + c_aux) / count;
}

/* max/min_over_time: a NaN held so far is replaced by the next sample,
 * and a later NaN never compares greater or smaller, so NaNs are skipped
 * unless every sample is NaN (a trailing NaN is kept only if all before it
 * were NaN too). */
static double max_over_time(const fn_window *w) {
    double max = w->v[0];
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i] > max || isnan(max)) max = w->v[i];
    return max;
}

static double min_over_time(const fn_window *w) {
    double min = w->v[0];
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i] < min || isnan(min)) min = w->v[i];
    return min;
}

static double resets(const fn_window *w) {
    size_t r = 0;
    for (size_t i = 1; i < w->n; i++)
        if (w->v[i] < w->v[i - 1]) r++;
    return (double)r;
}

/* changes: two NaNs in a row are no change. */
static double changes(const fn_window *w) {
    size_t c = 0;
    for (size_t i = 1; i < w->n; i++) {
        double prev = w->v[i - 1], cur = w->v[i];
        if (cur != prev && !(isnan(cur) && isnan(prev))) c++;
    }
    return (double)c;
}

/* quantile_over_time sorts a copy: the window is the evaluator's. */
#define FN_QUANTILE_STACK 256

static int quantile_over_time(const fn_window *w, double q, double *out) {
    double stack[FN_QUANTILE_STACK];
    double *vs = stack;
    if (w->n > FN_QUANTILE_STACK) {
        if (w->n > SIZE_MAX / sizeof *vs) return SM_ENOMEM;
        vs = sm_malloc(w->n * sizeof *vs);
        if (!vs) return SM_ENOMEM;
    }
    memcpy(vs, w->v, w->n * sizeof *vs);
    *out = fn_quantile(q, vs, w->n);
    if (vs != stack) sm_free(vs);
    return 1;
}

bool fn_is_range(promql_func_id f) {
    switch (f) {
    case PF_AVG_OVER_TIME: case PF_CHANGES: case PF_COUNT_OVER_TIME: case PF_DELTA:
    case PF_DERIV: case PF_HOLT_WINTERS: case PF_IDELTA: case PF_INCREASE: case PF_IRATE:
    case PF_LAST_OVER_TIME: case PF_MAX_OVER_TIME: case PF_MIN_OVER_TIME:
    case PF_PREDICT_LINEAR: case PF_PRESENT_OVER_TIME: case PF_QUANTILE_OVER_TIME:
    case PF_RATE: case PF_RESETS: case PF_STDDEV_OVER_TIME: case PF_STDVAR_OVER_TIME:
    case PF_SUM_OVER_TIME:
        return true;
    default:
        return false;
    }
}

/* Go's %f, which spells the infinities +Inf and -Inf. */
static void format_go_f(char *buf, size_t cap, double v) {
    if (isinf(v))
        snprintf(buf, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(buf, cap, "NaN");
    else
        snprintf(buf, cap, "%f", v);
}

int fn_range_args_check(promql_func_id f, const double *args, size_t nargs, sm_error *err) {
    size_t want = 0;
    switch (f) {
    case PF_QUANTILE_OVER_TIME: case PF_PREDICT_LINEAR: want = 1; break;
    case PF_HOLT_WINTERS: want = 2; break;
    default: break;
    }
    if (!fn_is_range(f)) return SM_ERR(err, SM_EINVAL, "not a range function: %d", (int)f);
    if (nargs < want || (want > 0 && !args))
        return SM_ERR(err, SM_EINVAL, "range function %d needs %zu scalar arguments, got %zu",
                      (int)f, want, nargs);
    if (f != PF_HOLT_WINTERS) return 0;
    /* Written so that NaN passes, as it does in Prometheus. */
    char num[400];
    double sf = args[0], tf = args[1];
    if (sf <= 0 || sf >= 1) {
        format_go_f(num, sizeof num, sf);
        return SM_ERR(err, SM_EINVAL, "invalid smoothing factor. Expected: 0 < sf < 1, got: %s",
                      num);
    }
    if (tf <= 0 || tf >= 1) {
        format_go_f(num, sizeof num, tf);
        return SM_ERR(err, SM_EINVAL, "invalid trend factor. Expected: 0 < tf < 1, got: %s", num);
    }
    return 0;
}

int fn_range_eval_at(promql_func_id f, const fn_window *w, sm_ms_t eval_ms, const double *args,
                     size_t nargs, double *out) {
    if (!fn_is_range(f)) return SM_EINVAL;
    /* Prometheus never calls a function on an empty window, so an empty
     * window is never an error, not even with bad holt_winters factors. */
    if (!w || w->n == 0) return 0;
    int rc = fn_range_args_check(f, args, nargs, NULL);
    if (rc < 0) return rc;
    return fn_range_eval_checked(f, w, eval_ms, args, out);
}

int fn_range_eval_checked(promql_func_id f, const fn_window *w, sm_ms_t eval_ms, const double *args,
                          double *out) {
    if (w->n == 0) return 0;
    double r;
    switch (f) {
    case PF_RATE: return extrapolated_rate(w, true, true, out);
    case PF_INCREASE: return extrapolated_rate(w, true, false, out);
    case PF_DELTA: return extrapolated_rate(w, false, false, out);
    case PF_IRATE: return instant_value(w, true, out);
    case PF_IDELTA: return instant_value(w, false, out);
    case PF_HOLT_WINTERS: return holt_winters(w, args[0], args[1], out);
    case PF_DERIV: {
        if (w->n < 2) return 0;
        double slope, icpt;
        linear_regression(w, w->t[0], &slope, &icpt);
        *out = slope;
        return 1;
    }
    case PF_PREDICT_LINEAR: {
        if (w->n < 2) return 0;
        double slope, icpt;
        linear_regression(w, eval_ms, &slope, &icpt);
        *out = slope * args[0] + icpt;
        return 1;
    }
    case PF_QUANTILE_OVER_TIME: return quantile_over_time(w, args[0], out);
    case PF_AVG_OVER_TIME: r = avg_over_time(w); break;
    case PF_SUM_OVER_TIME: r = sum_over_time(w); break;
    case PF_COUNT_OVER_TIME: r = (double)w->n; break;
    case PF_LAST_OVER_TIME: r = w->v[w->n - 1]; break;
    case PF_PRESENT_OVER_TIME: r = 1; break;
    case PF_MAX_OVER_TIME: r = max_over_time(w); break;
    case PF_MIN_OVER_TIME: r = min_over_time(w); break;
    case PF_STDVAR_OVER_TIME: r = stdvar_over_time(w); break;
    case PF_STDDEV_OVER_TIME: r = sqrt(stdvar_over_time(w)); break;
    case PF_RESETS: r = resets(w); break;
    case PF_CHANGES: r = changes(w); break;
    default: return SM_EINVAL;
    }
    *out = r;
    return 1;
}

int fn_range_eval(promql_func_id f, const fn_window *w, const double *args, size_t nargs,
                  double *out) {
    return fn_range_eval_at(f, w, w ? w->end : 0, args, nargs, out);
}

/* ---- calendar functions (Go's time package, UTC) ---------------------- */

/* Go's float64 -> int64 conversion on amd64 (CVTTSD2SQ): truncation toward
 * zero, and INT64_MIN for NaN and for values outside the int64 range. */
static int64_t go_f64_to_i64(double v) {
    if (isnan(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

typedef struct go_date {
    int64_t year;
    int month;  /* 1..12 */
    int day;    /* 1..31 */
    int yday;   /* 0-based */
    int weekday; /* 0 = Sunday */
    int hour, minute;
} go_date;

#define SECS_PER_DAY 86400ULL
#define DAYS_PER_400Y (365ULL * 400 + 97)
#define DAYS_PER_100Y (365ULL * 100 + 24)
#define DAYS_PER_4Y (365ULL * 4 + 1)
/* Go's absolute epoch is year -292277022399; seconds from it to 1970. */
#define GO_ABS_ZERO_YEAR (-292277022399LL)
#define GO_UNIX_TO_ABS 9223372028715321600ULL

static bool is_leap(int64_t y) {
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Cumulative days before each month in a non-leap year (Go's daysBefore). */
static const int days_before[13] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};

/* time.Unix(sec, 0).UTC() broken down the way Go's absDate does it, with
 * its unsigned wrap-around for seconds far outside any calendar. */
static void go_date_of(int64_t unix_s, go_date *d) {
    uint64_t abs = (uint64_t)unix_s + GO_UNIX_TO_ABS;
    uint64_t days = abs / SECS_PER_DAY;
    uint64_t n = days / DAYS_PER_400Y;
    uint64_t y = 400 * n;
    days -= DAYS_PER_400Y * n;
    n = days / DAYS_PER_100Y;
    n -= n >> 2;
    y += 100 * n;
    days -= DAYS_PER_100Y * n;
    n = days / DAYS_PER_4Y;
    y += 4 * n;
    days -= DAYS_PER_4Y * n;
    n = days / 365;
    n -= n >> 2;
    y += n;
    days -= 365 * n;
    d->year = (int64_t)y + GO_ABS_ZERO_YEAR;
    d->yday = (int)days;

    int day = d->yday;
    d->month = 0;
    if (is_leap(d->year)) {
        if (day > 31 + 29 - 1) {
            day--;
        } else if (day == 31 + 29 - 1) {
            d->month = 2;
            d->day = 29;
        }
    }
    if (d->month == 0) {
        int month = day / 31; /* 0-based guess, at most one too small */
        int end = days_before[month + 1], begin;
        if (day >= end) {
            month++;
            begin = end;
        } else {
            begin = days_before[month];
        }
        d->month = month + 1;
        d->day = day - begin + 1;
    }
    /* Go's absolute day 0 is a Monday. */
    d->weekday = (int)(((abs + SECS_PER_DAY) % (7 * SECS_PER_DAY)) / SECS_PER_DAY);
    d->hour = (int)((abs % SECS_PER_DAY) / 3600);
    d->minute = (int)((abs % 3600) / 60);
}

static double calendar(promql_func_id f, double v) {
    go_date d;
    go_date_of(go_f64_to_i64(v), &d);
    switch (f) {
    case PF_DAYS_IN_MONTH:
        if (d.month == 2) return is_leap(d.year) ? 29 : 28;
        return days_before[d.month] - days_before[d.month - 1];
    case PF_DAY_OF_MONTH: return d.day;
    case PF_DAY_OF_WEEK: return d.weekday;
    case PF_DAY_OF_YEAR: return d.yday + 1;
    case PF_HOUR: return d.hour;
    case PF_MINUTE: return d.minute;
    case PF_MONTH: return d.month;
    default: return (double)d.year; /* PF_YEAR */
    }
}

/* ---- element-wise functions ------------------------------------------- */

bool fn_is_elementwise(promql_func_id f) {
    switch (f) {
    case PF_ABS: case PF_CEIL: case PF_FLOOR: case PF_EXP: case PF_SQRT: case PF_LN:
    case PF_LOG2: case PF_LOG10: case PF_SGN: case PF_SIN: case PF_COS: case PF_TAN:
    case PF_ASIN: case PF_ACOS: case PF_ATAN: case PF_SINH: case PF_COSH: case PF_TANH:
    case PF_ASINH: case PF_ACOSH: case PF_ATANH: case PF_DEG: case PF_RAD:
    case PF_CLAMP: case PF_CLAMP_MIN: case PF_CLAMP_MAX: case PF_ROUND:
    case PF_DAYS_IN_MONTH: case PF_DAY_OF_MONTH: case PF_DAY_OF_WEEK: case PF_DAY_OF_YEAR:
    case PF_HOUR: case PF_MINUTE: case PF_MONTH: case PF_YEAR:
        return true;
    default:
        return false;
    }
}

int fn_elem_eval(promql_func_id f, double v, const double *args, size_t nargs, double *out) {
    double r;
    switch (f) {
    case PF_ABS: r = fabs(v); break;
    case PF_CEIL: r = ceil(v); break;
    case PF_FLOOR: r = floor(v); break;
    case PF_EXP: r = exp(v); break;
    case PF_SQRT: r = sqrt(v); break;
    case PF_LN: r = go_log(v); break;
    case PF_LOG2: r = go_log2(v); break;
    case PF_LOG10: r = go_log10(v); break;
    case PF_SIN: r = sin(v); break;
    case PF_COS: r = cos(v); break;
    case PF_TAN: r = tan(v); break;
    case PF_ASIN: r = asin(v); break;
    case PF_ACOS: r = acos(v); break;
    case PF_ATAN: r = atan(v); break;
    case PF_SINH: r = sinh(v); break;
    case PF_COSH: r = cosh(v); break;
    case PF_TANH: r = tanh(v); break;
    case PF_ASINH: r = asinh(v); break;
    case PF_ACOSH: r = acosh(v); break;
    case PF_ATANH: r = atanh(v); break;
    case PF_DEG: r = v * 180 / M_PI; break;
    case PF_RAD: r = v * M_PI / 180; break;
    case PF_SGN: r = v < 0 ? -1 : v > 0 ? 1 : v; break;
    case PF_CLAMP:
        if (nargs < 2 || !args) return SM_EINVAL;
        if (args[1] < args[0]) return 0;
        r = go_max(args[0], go_min(args[1], v));
        break;
    case PF_CLAMP_MIN:
        if (nargs < 1 || !args) return SM_EINVAL;
        r = go_max(args[0], v);
        break;
    case PF_CLAMP_MAX:
        if (nargs < 1 || !args) return SM_EINVAL;
        r = go_min(args[0], v);
        break;
    case PF_ROUND: {
        double to_nearest = (nargs >= 1 && args) ? args[0] : 1;
        /* Prometheus multiplies by the inverse: fewer rounding surprises. */
        double inv = 1.0 / to_nearest;
        r = floor(v * inv + 0.5) / inv;
        break;
    }
    case PF_DAYS_IN_MONTH: case PF_DAY_OF_MONTH: case PF_DAY_OF_WEEK: case PF_DAY_OF_YEAR:
    case PF_HOUR: case PF_MINUTE: case PF_MONTH: case PF_YEAR:
        r = calendar(f, v);
        break;
    default:
        return SM_EINVAL;
    }
    *out = r;
    return 1;
}
