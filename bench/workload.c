/* SPDX-License-Identifier: Apache-2.0
 *
 * workload.c - the synthetic node_exporter fleet of workload.h.
 *
 * Values are produced the way the exporters produce them, because that is
 * what decides how well they compress: CPU seconds are ticks / 100.0, byte
 * gauges are page multiples, durations are nanoseconds / 1e9, the time
 * offset is a full-precision float.  Rates and spreads are round figures
 * of the order seen on an idle-to-busy Linux server.
 */
#include "workload.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/sm_alloc.h"

typedef enum {
    M_CONST,     /* fixed value */
    M_COUNTER,   /* m += max(0, rate + sd*N) per scrape; v = m / scale */
    M_WALK,      /* m += round(sd*N) * mult, clamped at >= 0; v = m / scale */
    M_SPARSE,    /* like M_WALK but changes with probability p */
    M_SMOOTH,    /* load average: x = a*x + (1-a)*target; v = round(x*100)/100 */
    M_DURATION,  /* v = ns / 1e9 with ns log-normal around mean */
    M_FLOAT,     /* v = sd*N full precision */
    M_CLAMPED,   /* TSBS: x += N(0, 1) clamped to [0, 100]; v = x truncated */
} model;

typedef struct series {
    sm_labels ls;
    model m;
    const char *kind;
    double rate, sd, p, scale;
    int64_t mult;
    int64_t im; /* integer state */
    double x;   /* float state */
    double v;
    uint32_t host;
} series;

struct wl {
    wl_opts o;
    series *s;
    size_t n, cap;
    uint64_t rng;
    uint64_t step;
    char **strs; /* owned label strings */
    size_t nstrs, capstrs;
    sm_ms_t *host_t; /* per-host time of the current scrape */
};

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return (double)(rnd(s) >> 11) * (1.0 / 9007199254740992.0); }
static double gauss(uint64_t *s) {
    double u = unif(s), v = unif(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static const char *keep(wl *w, const char *s) {
    if (w->nstrs == w->capstrs) {
        w->capstrs = w->capstrs ? w->capstrs * 2 : 256;
        w->strs = sm_realloc(w->strs, w->capstrs * sizeof *w->strs);
    }
    char *c = sm_strdup(s);
    w->strs[w->nstrs++] = c;
    return c;
}

/* A new series of host with the first nl labels of tmp (room for one more:
 * __name__ is added here). */
static series *add_ls(wl *w, uint32_t host, const char *name, model m, const char *kind, sm_label *tmp, uint32_t nl) {
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->s = sm_realloc(w->s, w->cap * sizeof *w->s);
    }
    series *s = &w->s[w->n++];
    memset(s, 0, sizeof *s);
    s->m = m;
    s->host = host;
    s->kind = kind;
    s->scale = 1;
    s->mult = 1;
    tmp[nl++] = (sm_label){"__name__", keep(w, name)};
    sm_labels_sort(tmp, nl);
    sm_label *lv = sm_malloc(nl * sizeof *lv);
    memcpy(lv, tmp, nl * sizeof *lv);
    s->ls = (sm_labels){lv, nl};
    return s;
}

/* add(w, host, name, model, kind, "k","v", ..., NULL): a node_exporter
 * series (instance and job labels, then the pairs given). */
static series *add(wl *w, uint32_t host, const char *name, model m, const char *kind, ...) {
    sm_label tmp[8];
    uint32_t nl = 0;
    char inst[64];
    snprintf(inst, sizeof inst, "host-%04u:9100", host);
    tmp[nl++] = (sm_label){"instance", keep(w, inst)};
    tmp[nl++] = (sm_label){"job", "node"};
    va_list ap;
    va_start(ap, kind);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        tmp[nl++] = (sm_label){keep(w, k), keep(w, v)};
    }
    va_end(ap);
    return add_ls(w, host, name, m, kind, tmp, nl);
}

static void set(series *s, double rate, double sd, double scale, int64_t mult, int64_t init) {
    s->rate = rate;
    s->sd = sd;
    s->scale = scale;
    s->mult = mult;
    s->im = init;
    s->x = (double)init;
}

static void build_host(wl *w, uint32_t h) {
    uint64_t *r = &w->rng;
    char b1[32], b2[32];
    static const char *modes[] = {"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"};
    static const double mode_rate[] = {13.0, 0.1, 0.0, 0.0, 0.05, 0.0, 0.4, 1.2}; /* s per 15 s, x100 ticks */
    for (int c = 0; c < 8; c++) {
        snprintf(b1, sizeof b1, "%d", c);
        for (int m = 0; m < 8; m++) {
            series *s = add(w, h, "node_cpu_seconds_total", M_COUNTER, "counter", "cpu", b1, "mode",
                            modes[m], (const char *)NULL);
            set(s, mode_rate[m] * 100, mode_rate[m] * 10, 100, 1, (int64_t)(unif(r) * 1e8));
            if (mode_rate[m] == 0) s->m = M_CONST, s->kind = "const", s->v = 0;
        }
    }
    static const char *mem[] = {"Active", "Active_anon", "Active_file", "AnonPages", "Buffers", "Cached",
                                "Committed_AS", "Dirty", "Inactive", "Inactive_anon", "Inactive_file",
                                "KernelStack", "Mapped", "MemAvailable", "MemFree", "PageTables",
                                "SReclaimable", "SUnreclaim", "Shmem", "Slab", "Writeback"};
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) {
        snprintf(b2, sizeof b2, "node_memory_%s_bytes", mem[i]);
        series *s = add(w, h, b2, M_WALK, "gauge", (const char *)NULL);
        set(s, 0, 30 + unif(r) * 300, 1, 4096, (int64_t)(unif(r) * 4e6)); /* pages: up to 16 GiB */
    }
    static const char *memc[] = {"MemTotal", "SwapTotal", "SwapFree", "HugePages_Total", "Hugepagesize"};
    for (size_t i = 0; i < sizeof memc / sizeof *memc; i++) {
        snprintf(b2, sizeof b2, "node_memory_%s_bytes", memc[i]);
        series *s = add(w, h, b2, M_CONST, "const", (const char *)NULL);
        s->v = (double)((int64_t)(unif(r) * 8e6) * 4096);
    }
    static const char *devs[] = {"eth0", "lo"};
    static const char *nets[] = {"receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets",
                                 "receive_errs", "transmit_errs", "receive_drop", "transmit_drop"};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 8; i++) {
            snprintf(b2, sizeof b2, "node_network_%s_total", nets[i]);
            series *s = add(w, h, b2, M_COUNTER, "counter", "device", devs[d], (const char *)NULL);
            double rate = i < 2 ? 1.5e6 : i < 4 ? 1500 : 0.02;
            set(s, rate * (d ? 0.1 : 1), rate * 0.3, 1, 1, (int64_t)(unif(r) * 1e12));
        }
    static const char *disks[] = {"sda", "sdb"};
    for (int d = 0; d < 2; d++) {
        series *s = add(w, h, "node_disk_read_bytes_total", M_COUNTER, "counter", "device", disks[d],
                        (const char *)NULL);
        set(s, 200, 150, 1.0 / 512, 1, (int64_t)(unif(r) * 1e9)); /* sectors * 512 */
        s = add(w, h, "node_disk_written_bytes_total", M_COUNTER, "counter", "device", disks[d],
                (const char *)NULL);
        set(s, 900, 400, 1.0 / 512, 1, (int64_t)(unif(r) * 1e9));
        s = add(w, h, "node_disk_io_time_seconds_total", M_COUNTER, "counter", "device", disks[d],
                (const char *)NULL);
        set(s, 300, 200, 1000, 1, (int64_t)(unif(r) * 1e9));
        s = add(w, h, "node_disk_reads_completed_total", M_COUNTER, "counter", "device", disks[d],
                (const char *)NULL);
        set(s, 20, 15, 1, 1, (int64_t)(unif(r) * 1e7));
        s = add(w, h, "node_disk_writes_completed_total", M_COUNTER, "counter", "device", disks[d],
                (const char *)NULL);
        set(s, 60, 30, 1, 1, (int64_t)(unif(r) * 1e7));
        s = add(w, h, "node_disk_io_now", M_WALK, "gauge", "device", disks[d], (const char *)NULL);
        set(s, 0, 0.7, 1, 1, 0);
    }
    static const char *mounts[] = {"/", "/boot", "/home", "/var"};
    for (int m = 0; m < 4; m++) {
        snprintf(b1, sizeof b1, "/dev/sda%d", m + 1);
        static const char *fsn[] = {"size_bytes", "avail_bytes", "free_bytes", "files", "files_free"};
        for (int i = 0; i < 5; i++) {
            snprintf(b2, sizeof b2, "node_filesystem_%s", fsn[i]);
            bool cst = i == 0 || i == 3;
            series *s = add(w, h, b2, cst ? M_CONST : M_SPARSE, cst ? "const" : "gauge", "device", b1,
                            "fstype", "ext4", "mountpoint", mounts[m], (const char *)NULL);
            set(s, 0, 20, 1, i < 3 ? 4096 : 1, (int64_t)(unif(r) * 1e8));
            s->p = 0.3;
            s->v = (double)s->im * (double)s->mult;
        }
    }
    static const char *loads[] = {"node_load1", "node_load5", "node_load15"};
    static const double alpha[] = {0.78, 0.95, 0.983};
    for (int i = 0; i < 3; i++) {
        series *s = add(w, h, loads[i], M_SMOOTH, "gauge", (const char *)NULL);
        s->p = alpha[i];
        s->x = 0.5 + unif(r);
    }
    for (int i = 0; i < 24; i++) {
        snprintf(b2, sizeof b2, "node_vmstat_%s", (const char *[]){"pgfault", "pgmajfault", "pgpgin", "pgpgout",
            "pswpin", "pswpout", "oom_kill", "pgsteal_kswapd", "pgscan_kswapd", "nr_dirty", "nr_writeback",
            "pgalloc_normal", "pgfree", "pgactivate", "pgdeactivate", "pgrefill", "thp_fault_alloc",
            "compact_stall", "numa_hit", "numa_miss", "workingset_refault_file", "allocstall_normal",
            "kswapd_inodesteal", "drop_slab"}[i]);
        series *s = add(w, h, b2, M_COUNTER, "counter", (const char *)NULL);
        double rate = i % 4 == 0 ? 5e4 : i % 4 == 1 ? 300 : i % 4 == 2 ? 2 : 0;
        set(s, rate, rate * 0.5, 1, 1, (int64_t)(unif(r) * 1e9));
        if (rate == 0) s->m = M_CONST, s->kind = "const", s->v = (double)s->im;
    }
    for (int i = 0; i < 24; i++) {
        snprintf(b2, sizeof b2, "node_netstat_%s", (const char *[]){"Tcp_ActiveOpens", "Tcp_PassiveOpens",
            "Tcp_CurrEstab", "Tcp_InErrs", "Tcp_InSegs", "Tcp_OutRsts", "Tcp_OutSegs", "Tcp_RetransSegs",
            "Udp_InDatagrams", "Udp_InErrors", "Udp_NoPorts", "Udp_OutDatagrams", "TcpExt_ListenDrops",
            "TcpExt_ListenOverflows", "TcpExt_SyncookiesFailed", "TcpExt_SyncookiesRecv",
            "TcpExt_SyncookiesSent", "TcpExt_TCPTimeouts", "Icmp_InErrors", "Icmp_InMsgs", "Icmp_OutMsgs",
            "Ip_Forwarding", "IpExt_InOctets", "IpExt_OutOctets"}[i]);
        bool gauge = i == 2 || i == 21;
        series *s = add(w, h, b2, gauge ? M_WALK : M_COUNTER, gauge ? "gauge" : "counter",
                        (const char *)NULL);
        double rate = i % 3 == 0 ? 2000 : i % 3 == 1 ? 40 : 0.3;
        set(s, rate, rate * 0.4, 1, 1, (int64_t)(unif(r) * 1e8));
        if (i == 21) s->m = M_CONST, s->kind = "const", s->v = 1;
    }
    static const char *collectors[] = {"arp", "bcache", "bonding", "btrfs", "conntrack", "cpu", "cpufreq",
                                       "diskstats", "dmi", "edac", "entropy", "fibrechannel", "filefd",
                                       "filesystem", "hwmon", "infiniband", "ipvs", "loadavg", "mdadm",
                                       "meminfo", "netclass", "netdev", "netstat", "nfs", "nfsd", "nvme",
                                       "os", "powersupplyclass", "pressure", "rapl", "schedstat", "selinux",
                                       "sockstat", "softnet", "stat", "tapestats", "textfile", "thermal_zone",
                                       "time", "timex", "udp_queues", "uname", "vmstat", "xfs", "zfs"};
    for (size_t i = 0; i < sizeof collectors / sizeof *collectors; i++) {
        series *s = add(w, h, "node_scrape_collector_duration_seconds", M_DURATION, "float", "collector",
                        collectors[i], (const char *)NULL);
        s->rate = exp(log(2e4) + unif(r) * 6); /* 20 us .. 8 ms */
        s->sd = 0.4;
        s = add(w, h, "node_scrape_collector_success", M_CONST, "const", "collector", collectors[i],
                (const char *)NULL);
        s->v = 1;
    }
    static const char *qs[] = {"0", "0.25", "0.5", "0.75", "1"};
    for (int i = 0; i < 5; i++) {
        series *s = add(w, h, "go_gc_duration_seconds", M_DURATION, "float", "quantile", qs[i],
                        (const char *)NULL);
        s->rate = 3e4 * (1 + i);
        s->sd = 0.3;
        s->p = 0.25; /* a GC runs in a quarter of the scrape intervals */
    }
    /* The rest of a typical node_exporter: per-CPU guest time and softnet
     * counters, container network devices that are mostly idle, tmpfs
     * mounts, info metrics, the Go runtime's memstats and the exporter's
     * own HTTP handler counter. */
    for (int c = 0; c < 8; c++) {
        snprintf(b1, sizeof b1, "%d", c);
        series *s = add(w, h, "node_cpu_guest_seconds_total", M_CONST, "const", "cpu", b1, "mode", "nice",
                        (const char *)NULL);
        s = add(w, h, "node_cpu_guest_seconds_total", M_CONST, "const", "cpu", b1, "mode", "user",
                (const char *)NULL);
        s = add(w, h, "node_softnet_processed_total", M_COUNTER, "counter", "cpu", b1, (const char *)NULL);
        set(s, 400, 120, 1, 1, (int64_t)(unif(r) * 1e8));
        s = add(w, h, "node_softnet_dropped_total", M_CONST, "const", "cpu", b1, (const char *)NULL);
        s = add(w, h, "node_softnet_times_squeezed_total", M_SPARSE, "counter", "cpu", b1, (const char *)NULL);
        set(s, 0, 0.6, 1, 1, 40);
        s->p = 0.05;
        s->v = 40;
        s = add(w, h, "node_cpu_scaling_frequency_hertz", M_SPARSE, "gauge", "cpu", b1, (const char *)NULL);
        set(s, 0, 40, 1, 1000000, 2400);
        s->p = 0.2;
        s->v = 2.4e9;
    }
    static const char *vdevs[] = {"docker0", "veth1a2b3c", "veth4d5e6f"};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 8; i++) {
            snprintf(b2, sizeof b2, "node_network_%s_total", nets[i]);
            bool idle = d > 0 || i >= 4;
            series *s = add(w, h, b2, idle ? M_SPARSE : M_COUNTER, "counter", "device", vdevs[d],
                            (const char *)NULL);
            set(s, i < 2 ? 2000 : 5, i < 2 ? 1500 : 4, 1, 1, (int64_t)(unif(r) * 1e6));
            s->p = 0.1;
            s->sd = i < 2 ? 300 : 2;
            s->v = (double)s->im;
        }
    static const char *tmpfs[] = {"/run", "/run/lock", "/dev/shm", "/run/user/1000"};
    for (int m = 0; m < 4; m++)
        for (int i = 0; i < 4; i++) {
            snprintf(b2, sizeof b2, "node_filesystem_%s",
                     (const char *[]){"size_bytes", "avail_bytes", "files", "readonly"}[i]);
            series *s = add(w, h, b2, M_CONST, "const", "device", "tmpfs", "fstype", "tmpfs", "mountpoint",
                            tmpfs[m], (const char *)NULL);
            s->v = i == 3 ? 0 : (double)((int64_t)(unif(r) * 1e5) * 4096);
        }
    static const char *infos[] = {"node_uname_info", "node_os_info", "node_exporter_build_info", "go_info",
                                  "node_dmi_info", "node_selinux_enabled", "node_textfile_scrape_error"};
    for (size_t i = 0; i < sizeof infos / sizeof *infos; i++) {
        series *s = add(w, h, infos[i], M_CONST, "const", (const char *)NULL);
        s->v = i < 5 ? 1 : 0;
    }
    for (int d = 0; d < 5; d++) {
        const char *dv = d < 2 ? devs[d] : vdevs[d - 2];
        series *s = add(w, h, "node_network_up", M_CONST, "const", "device", dv, (const char *)NULL);
        s->v = 1;
        s = add(w, h, "node_network_mtu_bytes", M_CONST, "const", "device", dv, (const char *)NULL);
        s->v = 1500;
        s = add(w, h, "node_network_info", M_CONST, "const", "device", dv, (const char *)NULL);
        s->v = 1;
    }
    static const char *gomem[] = {"buck_hash_sys_bytes", "frees_total", "gc_sys_bytes", "heap_alloc_bytes",
                                  "heap_idle_bytes", "heap_inuse_bytes", "heap_released_bytes",
                                  "heap_sys_bytes", "last_gc_time_seconds", "lookups_total",
                                  "mallocs_total", "mcache_inuse_bytes", "mcache_sys_bytes",
                                  "mspan_inuse_bytes", "mspan_sys_bytes", "next_gc_bytes",
                                  "other_sys_bytes", "stack_inuse_bytes", "stack_sys_bytes", "sys_bytes"};
    for (size_t i = 0; i < sizeof gomem / sizeof *gomem; i++) {
        snprintf(b2, sizeof b2, "go_memstats_%s", gomem[i]);
        series *s;
        if (strstr(gomem[i], "_total")) {
            s = add(w, h, b2, M_COUNTER, "counter", (const char *)NULL);
            set(s, i == 9 ? 0 : 9000, i == 9 ? 0 : 2000, 1, 1, (int64_t)(unif(r) * 1e7));
        } else if (i % 3 == 0) {
            s = add(w, h, b2, M_SPARSE, "gauge", (const char *)NULL);
            set(s, 0, 4, 1, 8192, 500);
            s->p = 0.1;
            s->v = 500.0 * 8192;
        } else {
            s = add(w, h, b2, M_WALK, "gauge", (const char *)NULL);
            set(s, 0, 60, 1, 8, 400000);
        }
    }
    static const char *codes[] = {"200", "500", "503"};
    for (int i = 0; i < 3; i++) {
        series *s = add(w, h, "promhttp_metric_handler_requests_total", i ? M_CONST : M_COUNTER, "counter",
                        "code", codes[i], (const char *)NULL);
        set(s, 1, 0, 1, 1, 1000); /* one scrape, one request */
        s->v = 0;
    }
    series *s = add(w, h, "go_goroutines", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 0.8, 1, 1, 8);
    s = add(w, h, "go_memstats_alloc_bytes", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 4e4, 1, 8, 3000000);
    s = add(w, h, "go_memstats_heap_objects", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 300, 1, 1, 20000);
    s = add(w, h, "process_cpu_seconds_total", M_COUNTER, "counter", (const char *)NULL);
    set(s, 2, 1.5, 100, 1, (int64_t)(unif(r) * 1e6));
    s = add(w, h, "process_resident_memory_bytes", M_SPARSE, "gauge", (const char *)NULL);
    set(s, 0, 3, 1, 4096, 5000);
    s->p = 0.5;
    s = add(w, h, "process_open_fds", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 0.3, 1, 1, 9);
    s = add(w, h, "node_boot_time_seconds", M_CONST, "const", (const char *)NULL);
    s->v = 1.7e9 - (double)(rnd(r) % 10000000);
    s = add(w, h, "node_timex_offset_seconds", M_FLOAT, "float", (const char *)NULL);
    s->sd = 1e-4;
    s = add(w, h, "node_timex_frequency_adjustment_ratio", M_FLOAT, "float", (const char *)NULL);
    s->sd = 1e-6;
    s->x = 1.0;
    s = add(w, h, "node_entropy_available_bits", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 1.5, 1, 1, 256);
    s = add(w, h, "node_filefd_allocated", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 8, 1, 1, 3000);
    s = add(w, h, "node_sockstat_TCP_inuse", M_WALK, "gauge", (const char *)NULL);
    set(s, 0, 2, 1, 1, 40);
    s = add(w, h, "up", M_CONST, "const", (const char *)NULL);
    s->v = 1;
    s = add(w, h, "scrape_duration_seconds", M_DURATION, "float", (const char *)NULL);
    s->rate = 2.5e7;
    s->sd = 0.2;
    s = add(w, h, "scrape_samples_scraped", M_CONST, "const", (const char *)NULL);
    s->v = 300;
    s = add(w, h, "scrape_series_added", M_CONST, "const", (const char *)NULL);
    s->v = 0;
}

/* One TSBS cpu-only host: its ten tags drawn as TSBS's host.go draws them
 * (the choice lists are TSBS's), then the ten usage gauges, each starting
 * at a uniform point of [0, 100). */
static void build_devops_host(wl *w, uint32_t h) {
    uint64_t *r = &w->rng;
    static const char *regions[][5] = {
        {"us-east-1", "us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"},
        {"us-west-1", "us-west-1a", "us-west-1b", NULL, NULL},
        {"us-west-2", "us-west-2a", "us-west-2b", "us-west-2c", NULL},
        {"eu-west-1", "eu-west-1a", "eu-west-1b", "eu-west-1c", NULL},
        {"eu-central-1", "eu-central-1a", "eu-central-1b", NULL, NULL},
        {"ap-southeast-1", "ap-southeast-1a", "ap-southeast-1b", NULL, NULL},
        {"ap-southeast-2", "ap-southeast-2a", "ap-southeast-2b", NULL, NULL},
        {"ap-northeast-1", "ap-northeast-1a", "ap-northeast-1c", NULL, NULL},
        {"sa-east-1", "sa-east-1a", "sa-east-1b", "sa-east-1c", NULL},
    };
    static const char *teams[] = {"SF", "NYC", "LON", "CHI"};
    static const char *oses[] = {"Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"};
    static const char *arches[] = {"x64", "x86"};
    static const char *envs[] = {"production", "staging", "test"};
    static const char *fields[] = {"user", "system", "idle", "nice", "iowait",
                                   "irq", "softirq", "steal", "guest", "guest_nice"};
    const char *const *reg = regions[rnd(r) % 9];
    unsigned ndc = 0;
    while (ndc < 4 && reg[1 + ndc]) ndc++;
    char host[32], rack[16], svc[16], ver[16];
    snprintf(host, sizeof host, "host_%u", h);
    snprintf(rack, sizeof rack, "%u", (unsigned)(rnd(r) % 100));
    snprintf(svc, sizeof svc, "%u", (unsigned)(rnd(r) % 20));
    snprintf(ver, sizeof ver, "%u", (unsigned)(rnd(r) % 2));
    sm_label tags[10] = {
        {"hostname", keep(w, host)},
        {"region", reg[0]},
        {"datacenter", reg[1 + rnd(r) % ndc]},
        {"rack", keep(w, rack)},
        {"os", oses[rnd(r) % 3]},
        {"arch", arches[rnd(r) % 2]},
        {"team", teams[rnd(r) % 4]},
        {"service", keep(w, svc)},
        {"service_version", keep(w, ver)},
        {"service_environment", envs[rnd(r) % 3]},
    };
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        sm_label tmp[11];
        memcpy(tmp, tags, sizeof tags);
        char name[40];
        snprintf(name, sizeof name, "cpu_usage_%s", fields[f]);
        series *s = add_ls(w, h, name, M_CLAMPED, "cpu", tmp, 10);
        s->x = unif(r) * 100.0;
    }
}

static int cmp_series(const void *a, const void *b) {
    return sm_labels_cmp(&((const series *)a)->ls, &((const series *)b)->ls);
}

wl *wl_new(const wl_opts *o) {
    wl *w = sm_calloc(1, sizeof *w);
    w->o = *o;
    if (w->o.interval_ms <= 0) w->o.interval_ms = o->mix == WL_DEVOPS_CPU ? 10000 : 15000;
    w->rng = o->seed ? o->seed : 1;
    for (uint32_t h = 0; h < o->hosts; h++) {
        if (o->mix == WL_DEVOPS_CPU) build_devops_host(w, h);
        else build_host(w, h);
    }
    /* Series in label order, as a block lists them. */
    qsort(w->s, w->n, sizeof *w->s, cmp_series);
    for (size_t i = 0; i < w->n; i++)
        if (w->s[i].m != M_CONST && w->s[i].m != M_CLAMPED) w->s[i].v = w->s[i].im / w->s[i].scale;
    return w;
}

void wl_free(wl *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) sm_free((void *)w->s[i].ls.v);
    for (size_t i = 0; i < w->nstrs; i++) sm_free(w->strs[i]);
    sm_free(w->strs);
    sm_free(w->host_t);
    sm_free(w->s);
    sm_free(w);
}

size_t wl_series_count(const wl *w) { return w->n; }
const sm_labels *wl_series_labels(const wl *w, size_t i) { return &w->s[i].ls; }
const char *wl_series_kind(const wl *w, size_t i) { return w->s[i].kind; }
uint32_t wl_series_host(const wl *w, size_t i) { return w->s[i].host; }
int64_t wl_interval_ms(const wl *w) { return w->o.interval_ms; }

int wl_mix_parse(const char *name, wl_mix *mix) {
    if (!strcmp(name, "node")) *mix = WL_NODE;
    else if (!strcmp(name, "devops")) *mix = WL_DEVOPS_CPU;
    else return -1;
    return 0;
}

static double advance(wl *w, series *s) {
    uint64_t *r = &w->rng;
    switch (s->m) {
    case M_CONST: return s->v;
    case M_COUNTER: {
        double inc = s->rate + s->sd * gauss(r);
        if (inc > 0) s->im += (int64_t)llround(inc);
        return s->scale == 1 ? (double)s->im
               : s->scale < 1 ? (double)s->im * (1 / s->scale)
                              : (double)s->im / s->scale;
    }
    case M_SPARSE:
        if (unif(r) >= s->p) return s->v;
        /* fall through */
    case M_WALK: {
        s->im += (int64_t)llround(s->sd * gauss(r));
        if (s->im < 0) s->im = 0;
        s->v = (double)(s->im * s->mult) / s->scale;
        return s->v;
    }
    case M_SMOOTH: {
        double target = 0.6 + 0.5 * fabs(gauss(r));
        s->x = s->p * s->x + (1 - s->p) * target;
        return round(s->x * 100) / 100;
    }
    case M_DURATION: {
        if (s->p > 0 && unif(r) >= s->p && s->v != 0) return s->v;
        int64_t ns = (int64_t)(s->rate * exp(s->sd * gauss(r)));
        s->v = (double)ns / 1e9;
        return s->v;
    }
    case M_FLOAT:
        s->x += s->sd * gauss(r) * 0.1;
        return s->x + s->sd * gauss(r);
    case M_CLAMPED:
        s->x += gauss(r);
        s->x = s->x < 0.0 ? 0.0 : s->x > 100.0 ? 100.0 : s->x;
        return (double)(int64_t)s->x;
    }
    return 0;
}

void wl_step(wl *w, sm_ms_t *ts, double *vs) {
    sm_ms_t base = w->o.start_ms + (sm_ms_t)w->step * w->o.interval_ms;
    /* One scrape time per host (every series of a target shares it). */
    uint32_t hosts = w->o.hosts ? w->o.hosts : 1;
    if (!w->host_t) w->host_t = sm_calloc(hosts, sizeof *w->host_t);
    for (uint32_t h = 0; h < hosts; h++) {
        int64_t j = w->o.jitter_ms;
        w->host_t[h] = base + (sm_ms_t)h * 37 % (w->o.interval_ms) +
                       (j ? (sm_ms_t)(rnd(&w->rng) % (uint64_t)(2 * j + 1)) - j : 0);
    }
    for (size_t i = 0; i < w->n; i++) {
        ts[i] = w->host_t[w->s[i].host];
        vs[i] = advance(w, &w->s[i]);
    }
    w->step++;
}

int wl_write_openmetrics(wl *w, FILE *f, size_t nscrapes) {
    sm_ms_t *ts = sm_malloc(w->n * sizeof *ts);
    double *vs = sm_malloc(w->n * sizeof *vs);
    for (size_t k = 0; k < nscrapes; k++) {
        wl_step(w, ts, vs);
        for (size_t i = 0; i < w->n; i++) {
            /* name{l="v",...} value seconds: no spaces inside the braces,
             * as OpenMetrics requires; %.17g keeps every bit. */
            const sm_labels *ls = &w->s[i].ls;
            fputs(sm_labels_get(ls, "__name__"), f);
            int k2 = 0;
            for (uint32_t j = 0; j < ls->n; j++) {
                if (!strcmp(ls->v[j].name, "__name__")) continue;
                fprintf(f, "%c%s=\"%s\"", k2++ ? ',' : '{', ls->v[j].name, ls->v[j].value);
            }
            if (k2) fputc('}', f);
            fprintf(f, " %.17g %lld.%03lld\n", vs[i], (long long)(ts[i] / 1000), (long long)(ts[i] % 1000));
        }
    }
    fprintf(f, "# EOF\n");
    sm_free(ts);
    sm_free(vs);
    return ferror(f) ? -1 : 0;
}
