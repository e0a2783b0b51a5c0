/*
 * cmd_bench.c - `sluice bench`: the job graph over a JSON-lines file, in
 * memory, with every sink replaced by a counting null sink.
 *
 * It measures the real per-record path of `sluice run` (decode, key,
 * state, windows, timers, watermarks, firing and the computation of every
 * result) without I/O: the file is read into memory first, and the clock
 * runs from the first record to the end of engine_finish(), so the windows
 * still open at the end of the input, which fire at +infinity, are part of
 * the figure.  All records go to one source (the first, or --source),
 * partition 0.  State figures are taken at the end of the input, before
 * the final firing empties the state.  The last line is the one
 * docs/sluice.1 documents:
 *     events=N seconds=S events_per_sec=R state_keys=K bytes_per_key=B
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "../config/job.h"
#include "../engine/ckpt_file.h"
#include "../engine/engine.h"
#include "../connectors/redis_sink.h"
#include "cli.h"

const struct cli_command cli_bench = {
    .name = "bench",
    .summary = "run the job graph over a file in memory and report throughput",
    .usage =
        "usage: sluice bench -c FILE --input FILE.jsonl [--source NAME] [--repeat N]\n"
        "                    [--checkpoint DIR] [--encode] [--no-batch]\n"
        "\n"
        "Loads the input (JSON lines) into memory, then runs the job's operators\n"
        "over it on one core with every sink replaced by a counting null sink,\n"
        "fires every window at the end (as --bounded does), and prints:\n"
        "  events=N seconds=S events_per_sec=R state_keys=K bytes_per_key=B\n"
        "as the last line, after the results' figures, among them\n"
        "  ns_per_event=E results_per_event=P ns_per_result=F fired=N ...\n"
        "where ns_per_result is the time spent firing due windows (combining\n"
        "panes, computing aggregates, handing results over) per result fired.\n"
        "--encode also encodes every result as its Redis sinks would send it\n"
        "(the sink's own encoding, no I/O), inside that time.  --no-batch feeds\n"
        "the records one at a time, without announcing them ahead (engine_prefetch),\n"
        "to compare.\n"
        "\n"
        "State figures are taken at the end of the input,\n"
        "before the final firing.  --repeat runs the whole measurement N times\n"
        "(a fresh engine each time) and reports the fastest.  --checkpoint DIR also\n"
        "checkpoints the state at the end of the input into DIR, as `sluice run`\n"
        "does (fork, the child writes the file), and restores it into a new engine:\n"
        "  checkpoint: keys=K bytes=B fork_stall_ms=F write_ms=W restore_ms=R\n",
    .run = cmd_bench,
};

struct counts {
    uint64_t results, late, invalid, lost;
    uint64_t checksum;              /* keeps the results honest: every value is read */
    int encode;                     /* --encode */
    const unsigned char *redis;     /* per sink of the job: a Redis sink */
    uint64_t encoded;               /* bytes of Redis commands the results became */
    const struct job *job;
    struct redis_enc enc;
};

/* With --encode, every result is encoded as each of its operator's Redis sinks would send
 * it (the sink's own code, connectors/redis_sink.c), so the cost of a
 * result is the cost of one ready to write. */
static void on_result(void *ud, const struct engine_result *r)
{
    struct counts *c = ud;
    const struct job_operator *op = &c->job->operators[r->op];
    c->results++;
    for (size_t i = 0; i < r->nvals; i++)
        c->checksum += (uint64_t)r->vals[i].u.i;
    c->checksum += (uint64_t)r->end;
    for (size_t k = 0; c->encode && k < op->nsinks; k++) {
        const struct job_sink *js = &c->job->sinks[op->sinks[k]];
        if (c->redis[op->sinks[k]] && redis_encode_result(&c->enc, js, c->job, op, r) == 0)
            c->encoded += c->enc.out.len;
    }
}

static void on_late(void *ud, int op, int sink, const struct record *rec)
{
    (void)ud, (void)op, (void)sink, (void)rec;     /* counted by the engine */
}

static void on_invalid(void *ud, int source, int dl, int32_t part, int64_t off,
                       const char *raw, size_t len, const struct reject *rej)
{
    (void)source, (void)dl, (void)part, (void)off, (void)raw, (void)len, (void)rej;
    ((struct counts *)ud)->invalid++;
}

/* Anonymous memory resident now (kB): the state, without the mapped input. */
static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "RssAnon: %ld", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

/* CPU time of this process (s): what other load on a shared machine
 * disturbs less than the wall clock. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The checkpoint path of `sluice run`, timed: the fork (the loop's stall),
 * the child writing, and a restore into a new engine. */
static int bench_checkpoint(struct engine *e, const struct job *job, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench.sluice", dir);
    struct ckpt_writer w;
    if (ckpt_writer_init(&w, 1) < 0)
        return -ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "sluice bench: %s: %s\n", path, strerror(errno));
        ckpt_writer_free(&w);
        return -EIO;
    }
    struct engine_stats st;
    engine_get_stats(e, &st);
    double t0 = mono();
    pid_t pid = fork();
    if (pid == 0) {
        ckpt_write_header(&w, fd, CKPT_CHECKPOINT, 1, 0, job->name);
        int rc = engine_snapshot(e, &w, NULL, NULL);
        rc = rc ? rc : ckpt_finish(&w);
        if (rc == 0 && fsync(fd) < 0)
            rc = -1;
        _exit(rc ? 1 : 0);
    }
    double t1 = mono();
    close(fd);
    ckpt_writer_free(&w);
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sluice bench: the checkpoint writer failed\n");
        return -EIO;
    }
    double t2 = mono();
    struct engine *r = NULL;
    struct ckpt_reader *rd;
    struct ckpt_info info;
    char err[256];
    struct engine_output none = { 0 };
    if (ckpt_open(path, &rd, &info, err, sizeof(err)) < 0 ||
        engine_new(job, NULL, &none, &r) < 0 ||
        engine_restore(r, rd, 0, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice bench: restore: %s\n", err);
        engine_free(r);
        return -EIO;
    }
    ckpt_close(rd);
    double t3 = mono();
    struct engine_stats rs;
    engine_get_stats(r, &rs);
    engine_free(r);
    printf("checkpoint: keys=%llu restored_keys=%llu bytes=%llu fork_stall_ms=%.2f write_ms=%.0f "
           "restore_ms=%.0f\n", (unsigned long long)st.state_keys,
           (unsigned long long)rs.state_keys, (unsigned long long)info.file_bytes,
           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
    unlink(path);
    return rs.state_keys == st.state_keys ? 0 : -1;
}

/* The input, mapped.  MADV_DONTFORK keeps it out of a checkpoint's fork:
 * the daemon has no such buffer, so the fork is timed on state alone. */
static char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    *len = (size_t)st.st_size;
    if (*len == 0) {
        close(fd);
        return calloc(1, 1);
    }
    char *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, *len, MADV_DONTFORK);
    return p;
}

static void free_input(char *p, size_t len)
{
    if (len == 0)
        free(p);
    else
        munmap(p, len);
}

int cmd_bench(int argc, char **argv)
{
    const char *file = NULL, *input = NULL, *source = NULL, *ckdir = NULL;
    long repeat = 1;
    int encode = 0, batched = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cli_bench.usage, stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "--encode") == 0) {
            encode = 1;
            continue;
        }
        if (strcmp(a, "--no-batch") == 0) {
            batched = 0;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sluice bench: unexpected argument '%s'\n%s", a, cli_bench.usage);
            return EXIT_CONFIG;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            file = argv[++i];
        else if (strcmp(a, "--input") == 0)
            input = argv[++i];
        else if (strcmp(a, "--source") == 0)
            source = argv[++i];
        else if (strcmp(a, "--checkpoint") == 0)
            ckdir = argv[++i];
        else if (strcmp(a, "--repeat") == 0) {
            repeat = strtol(argv[++i], NULL, 10);
            if (repeat < 1 || repeat > 1000) {
                fprintf(stderr, "sluice bench: --repeat: expected 1..1000\n");
                return EXIT_CONFIG;
            }
        } else {
            fprintf(stderr, "sluice bench: unexpected argument '%s'\n%s", a, cli_bench.usage);
            return EXIT_CONFIG;
        }
    }
    if (file == NULL || input == NULL) {
        fprintf(stderr, "sluice bench: -c FILE and --input FILE.jsonl are required\n%s",
                cli_bench.usage);
        return EXIT_CONFIG;
    }
    struct job *job = NULL;
    if (cli_load_job(file, &job) != EXIT_OK)
        return EXIT_CONFIG;
    int src = 0;
    if (source != NULL) {
        src = -1;
        for (size_t i = 0; i < job->nsources; i++)
            if (strcmp(job->sources[i].name, source) == 0)
                src = (int)i;
        if (src < 0) {
            fprintf(stderr, "sluice bench: no source named '%s'\n", source);
            job_free(job);
            return EXIT_CONFIG;
        }
    }
    size_t len;
    char *buf = read_all(input, &len);
    if (buf == NULL) {
        fprintf(stderr, "sluice bench: %s: %s\n", input, strerror(errno));
        job_free(job);
        return EXIT_RUNTIME;
    }

    /* which sinks are Redis sinks, looked up once, not per result */
    unsigned char *redis = calloc(job->nsinks ? job->nsinks : 1, 1);
    if (redis == NULL) {
        fprintf(stderr, "sluice bench: out of memory\n");
        free_input(buf, len);
        job_free(job);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < job->nsinks; i++)
        redis[i] = strcmp(job->sinks[i].type->name, "redis") == 0;
    double best = -1, best_cpu = 0, fire_secs = 0;
    uint64_t fired = 0;
    long rss_end = 0;
    struct engine_stats at_end = { 0 };
    struct counts c = { 0 };
    uint64_t events = 0;
    int rc = EXIT_OK;
    for (long rep = 0; rep < repeat && rc == EXIT_OK; rep++) {
        struct engine *e = NULL;
        struct counts cc = { .job = job, .encode = encode, .redis = redis };
        struct engine_output out = { &cc, on_result, on_late, on_invalid, NULL };
        struct engine_opts eo = { .time_firing = 1 };
        /* the sources the engine reads the input through: the input itself,
         * and its repartition sources (partitioned_by): in memory there is
         * one partition, so the hop through Kafka changes nothing */
        int feeds[64], nfeeds = 0;
        if (!job->sources[src].unread)
            feeds[nfeeds++] = src;
        for (size_t i = 0; i < job->nsources && nfeeds < 64; i++)
            if (job->sources[i].role == SRC_REPARTITION && job->sources[i].origin == src)
                feeds[nfeeds++] = (int)i;
        int bad = engine_new(job, &eo, &out, &e) < 0;
        for (int f = 0; !bad && f < nfeeds; f++)
            bad = engine_partition_add(e, feeds[f], 0) < 0;
        if (bad) {
            fprintf(stderr, "sluice bench: out of memory\n");
            engine_free(e);
            rc = EXIT_RUNTIME;
            break;
        }
        uint64_t n = 0;
        double t0 = mono(), u0 = cpu();
        uint64_t c0 = engine_cycles();
        /* one feed: records go in batches (engine_feed_batch), as the
         * daemon's kafka source hands them over; several feeds: each
         * record to each in turn, one at a time */
        struct engine_in batch[256];
        size_t nb = 0;
        for (size_t off = 0; off <= len && rc == EXIT_OK;) {
            const char *nl = off < len ? memchr(buf + off, '\n', len - off) : NULL;
            size_t end = nl ? (size_t)(nl - buf) : len;
            int frc = 0;
            if (end > off && (nfeeds > 1 || !batched)) {
                for (int f = 0; frc == 0 && f < nfeeds; f++)
                    frc = engine_feed(e, feeds[f], 0, (int64_t)n, buf + off, end - off, 0);
                n++;
            } else if (end > off) {
                batch[nb++] = (struct engine_in){ buf + off, end - off, (int64_t)n, 0 };
                n++;
            }
            if (nb > 0 && (nb == 256 || end >= len)) {
                size_t done;
                frc = engine_feed_batch(e, feeds[0], 0, batch, nb, &done);
                nb = 0;
            }
            if (frc < 0) {
                fprintf(stderr, "sluice bench: out of memory at record %llu\n",
                        (unsigned long long)n);
                rc = EXIT_RUNTIME;
            }
            off = end + 1;
        }
        struct engine_stats st, fin;
        engine_get_stats(e, &st);
        double tc = mono(), uc = cpu();
        long rss_at_end = rss_anon_kb();
        uint64_t cpause = engine_cycles();
        if (ckdir != NULL && rep == 0 && bench_checkpoint(e, job, ckdir) < 0)
            rc = EXIT_RUNTIME;
        t0 += mono() - tc;          /* not part of the throughput figure */
        u0 += cpu() - uc;
        c0 += engine_cycles() - cpause;
        engine_finish(e);
        double secs = mono() - t0, usecs = cpu() - u0;
        uint64_t cycles = engine_cycles() - c0;
        engine_get_stats(e, &fin);
        cc.late = fin.records_late;
        cc.lost = fin.results_lost;
        if (best < 0 || secs < best) {
            best = secs;
            best_cpu = usecs;
            at_end = st;
            c = cc;
            c.enc = (struct redis_enc){ 0 };
            /* the time spent firing, from ticks to seconds over the run */
            fire_secs = cycles ? secs * (double)fin.fire_cycles / (double)cycles : 0;
            fired = fin.fire_results;
            rss_end = rss_at_end;
        }
        events = n;
        redis_enc_free(&cc.enc);
        engine_free(e);
    }
    free_input(buf, len);
    free(redis);
    if (rc != EXIT_OK) {
        job_free(job);
        return rc;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("results=%llu invalid=%llu late=%llu lost=%llu checksum=%llu peak_rss_kb=%ld "
           "anon_rss_kb_at_end=%ld\n",
           (unsigned long long)c.results, (unsigned long long)c.invalid,
           (unsigned long long)c.late, (unsigned long long)c.lost,
           (unsigned long long)c.checksum, ru.ru_maxrss, rss_end);
    printf("ns_per_event=%.1f cpu_ns_per_event=%.1f results_per_event=%.3f ns_per_result=%.1f "
           "fired=%llu redis_bytes_per_result=%.1f\n",
           events ? best * 1e9 / (double)events : 0,
           events ? best_cpu * 1e9 / (double)events : 0,
           events ? (double)c.results / (double)events : 0,
           fired ? fire_secs * 1e9 / (double)fired : 0, (unsigned long long)fired,
           c.results ? (double)c.encoded / (double)c.results : 0);
    printf("state_bytes=%llu table=%llu slab=%llu slab_live=%llu timers=%llu\n",
           (unsigned long long)at_end.state_bytes, (unsigned long long)at_end.state_table_bytes,
           (unsigned long long)at_end.state_slab_bytes,
           (unsigned long long)at_end.state_slab_live,
           (unsigned long long)at_end.state_timer_bytes);
    printf("events=%llu seconds=%.3f events_per_sec=%.0f state_keys=%llu bytes_per_key=%.0f\n",
           (unsigned long long)events, best, best > 0 ? (double)events / best : 0,
           (unsigned long long)at_end.state_keys,
           at_end.state_keys ? (double)at_end.state_bytes / (double)at_end.state_keys : 0);
    job_free(job);
    return EXIT_OK;
}
