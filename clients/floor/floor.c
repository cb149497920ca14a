/*
 * floor.c: sammen-floor, the loopback floor of the care workload (issue 6;
 * PERFORMANCE.md "The loopback floor").
 *
 * What the care workload's traffic costs this machine when the server does
 * nothing but move it, as soon as it can (work-conserving: no deliberate
 * coalescing delay): T threads of M members at R messages a second.
 *
 *   server process  takes fixed-size message records from its T*M
 *                   connections (each introduced by a hello record with its
 *                   index, so the mapping never rests on accept order);
 *                   makes each batch durable (pwrite + fdatasync
 *                   on a helper thread, group commit: the next batch gathers
 *                   while one is synced); then appends one fixed-size delivery
 *                   frame per other member of the thread to each member's
 *                   connection, and sends each connection's pending frames
 *                   with one send() per loop turn (optionally split over
 *                   --send-threads; with --flush-every, at most every so
 *                   many ms, a deliberate delay that makes batches larger).
 *                   Acks set a cursor in memory.
 *   client process  holds the T*M connections; sends R messages a second from
 *                   random members (one send() each, as sammen-bench does);
 *                   reads the deliveries; checks every sender's sequence per
 *                   receiving connection (lost, duplicated, out of order) and
 *                   that each delivery belongs there (its thread, not its own
 *                   sender: misrouted); measures the latency from send to
 *                   receipt, reading the clock at each recv(); acknowledges
 *                   what arrived (a 16-byte record per connection at most
 *                   every --ack-every ms).
 *
 * No WebSocket, no msgpack, no SQLite, no MLS, no consent checks: the real
 * server and bench do all of this and more. A server that delays deliveries
 * on purpose to make batches larger could spend less CPU per delivery than
 * this one, at the cost of latency.
 * Both processes run on this machine, on loopback, as the bench and the
 * server do. The window: --warmup seconds after the start (connections made,
 * the rate reached), then --duration seconds measured; the client then waits
 * up to 10 s for the last deliveries.
 *
 * Output: a table, or with --json one JSON document, on stdout. Exit 0 when
 * every delivery arrived once and in order, 1 otherwise, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REC_MSG 1
#define REC_ACK 2
#define REC_HELLO 3 /* first record on a connection: seq = its index */
#define ACK_BYTES 16 /* an ack or a hello: type, pad, thread, member, seq */
#define CONNS_MAX 25000 /* one source address: ~28,000 ephemeral ports */
#define INBUF 16384
#define FRAME_MAX 4096
#define MEMBERS_MAX 64
#define HBUCKET_NS 10000ull          /* latency histogram: 10 µs buckets */
#define HBUCKETS 1000000u            /* up to 10 s; later ones in the last */
#define DRAIN_NS 10000000000ull      /* after the window: wait for the rest */
#define NS 1000000000.0

/* The head of every record in both directions; a message or a delivery is
 * padded to --frame bytes, an ack is ACK_BYTES (struct rec is 24). */
struct rec {
    uint8_t type, pad[3];
    uint32_t thread, member, seq;
    uint64_t t_ns; /* when the client sent the message */
};

struct opts {
    int threads, members, send_threads, ack_ms, json, sockbuf, flush_ms;
    size_t frame;
    double rate, duration, warmup;
};

/* Figures the server process leaves for the client process (shared map). */
struct srv_fig {
    double cpu_s, window_s;
    uint64_t turns, sends, frames, syncs, sync_ns, acks; /* acks: whole run */
    int measured;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
        abort();
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage r;
    if (getrusage(RUSAGE_SELF, &r) != 0)
        return 0;
    return (double)r.ru_utime.tv_sec + (double)r.ru_stime.tv_sec +
           ((double)r.ru_utime.tv_usec + (double)r.ru_stime.tv_usec) / 1e6;
}

static void die(const char *who, const char *what)
{
    fprintf(stderr, "sammen-floor: %s: %s: %s\n", who, what, strerror(errno));
    exit(1);
}

static void die_short(const char *who, const char *what)
{
    fprintf(stderr, "sammen-floor: %s: %s: short write\n", who, what);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "sammen-floor: out of memory\n");
        exit(1);
    }
    return p;
}

/* Grows *p to hold need bytes (doubling); out of memory ends the run. */
static void grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q) {
        fprintf(stderr, "sammen-floor: out of memory\n");
        exit(1);
    }
    *p = q;
    *cap = c;
}

static int nonblocking_nodelay(int fd, int bufopt, int bytes)
{
    int one = 1, fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    if (bytes > 0 && setsockopt(fd, SOL_SOCKET, bufopt, &bytes, sizeof(bytes)) != 0)
        return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ================================================================ server */

struct sconn {
    int fd;
    size_t inlen, outlen, outcap;
    uint8_t *out;
    int dirty, eof;
    uint32_t cursor;
    uint8_t in[INBUF];
};

/* Message records as received, --frame bytes each: what the syncer writes
 * and, once synced, what goes to the other members. */
struct batch {
    uint8_t *bytes;
    size_t blen, bcap;
};

/* The syncer: one batch at a time, appended to the log file and synced. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *job;
    int stop, efd, file, done; /* done: a synced batch waits (__atomic) */
    off_t off;
    uint64_t ns; /* pwrite + fdatasync, summed (__atomic) */
} sy = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, -1, -1, 0, 0, 0};

static void *syncer(void *arg)
{
    (void)arg;
    for (;;) {
        if (pthread_mutex_lock(&sy.mu) != 0)
            abort();
        while (!sy.job && !sy.stop)
            if (pthread_cond_wait(&sy.cv, &sy.mu) != 0)
                abort();
        struct batch *b = sy.job;
        int stop = sy.stop;
        if (pthread_mutex_unlock(&sy.mu) != 0)
            abort();
        if (stop)
            return NULL;
        uint64_t t0 = now_ns();
        ssize_t k = pwrite(sy.file, b->bytes, b->blen, sy.off);
        if (k < 0)
            die("server", "pwrite of the log");
        if ((size_t)k != b->blen)
            die_short("server", "pwrite of the log");
        sy.off += (off_t)b->blen;
        if (fdatasync(sy.file) != 0)
            die("server", "fdatasync of the log");
        __atomic_add_fetch(&sy.ns, now_ns() - t0, __ATOMIC_RELAXED);
        if (pthread_mutex_lock(&sy.mu) != 0)
            abort();
        sy.job = NULL;
        if (pthread_mutex_unlock(&sy.mu) != 0)
            abort();
        /* the loop looks at `done` every turn; the eventfd only wakes it */
        __atomic_store_n(&sy.done, 1, __ATOMIC_RELEASE);
        uint64_t one = 1;
        if (write(sy.efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            die("server", "eventfd write");
    }
}

/* The send pool: the loop thread and send_threads-1 helpers take the dirty
 * connections by an atomic index, one send() each, and the loop thread
 * waits for all before the turn goes on. */
static struct {
    struct sconn *conns;
    int *dirty;
    int ndirty, workers, done, stop;
    unsigned gen;
    int next; /* taken with __atomic */
    uint64_t sent; /* send() calls that took bytes (__atomic) */
    pthread_mutex_t mu;
    pthread_cond_t go, fin;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
          .fin = PTHREAD_COND_INITIALIZER};

static void flush_some(void)
{
    for (;;) {
        int i = __atomic_fetch_add(&pool.next, 1, __ATOMIC_RELAXED);
        if (i >= pool.ndirty)
            return;
        struct sconn *c = &pool.conns[pool.dirty[i]];
        ssize_t k = send(c->fd, c->out, c->outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue; /* tried again next turn */
            if (errno == EPIPE || errno == ECONNRESET) {
                c->outlen = 0; /* the client has gone: the run is ending */
                continue;
            }
            die("server", "send");
        }
        __atomic_add_fetch(&pool.sent, 1, __ATOMIC_RELAXED);
        memmove(c->out, c->out + k, c->outlen - (size_t)k);
        c->outlen -= (size_t)k;
    }
}

static void *pool_worker(void *arg)
{
    (void)arg;
    unsigned seen = 0;
    for (;;) {
        if (pthread_mutex_lock(&pool.mu) != 0)
            abort();
        while (pool.gen == seen && !pool.stop)
            if (pthread_cond_wait(&pool.go, &pool.mu) != 0)
                abort();
        seen = pool.gen;
        int stop = pool.stop;
        if (pthread_mutex_unlock(&pool.mu) != 0)
            abort();
        if (stop)
            return NULL;
        flush_some();
        if (pthread_mutex_lock(&pool.mu) != 0)
            abort();
        pool.done++;
        if (pthread_cond_signal(&pool.fin) != 0)
            abort();
        if (pthread_mutex_unlock(&pool.mu) != 0)
            abort();
    }
}

#define POOL_MIN 64 /* fewer dirty connections: the loop thread sends alone */

static void pool_flush(void)
{
    int helpers = pool.workers > 0 && pool.ndirty >= POOL_MIN;
    __atomic_store_n(&pool.next, 0, __ATOMIC_RELAXED);
    if (helpers) {
        if (pthread_mutex_lock(&pool.mu) != 0)
            abort();
        pool.done = 0;
        pool.gen++;
        if (pthread_cond_broadcast(&pool.go) != 0)
            abort();
        if (pthread_mutex_unlock(&pool.mu) != 0)
            abort();
    }
    flush_some();
    if (helpers) {
        if (pthread_mutex_lock(&pool.mu) != 0)
            abort();
        while (pool.done < pool.workers)
            if (pthread_cond_wait(&pool.fin, &pool.mu) != 0)
                abort();
        if (pthread_mutex_unlock(&pool.mu) != 0)
            abort();
    }
}

static void batch_add(struct batch *b, const uint8_t *bytes, size_t len)
{
    grow(&b->bytes, &b->bcap, b->blen + len);
    memcpy(b->bytes + b->blen, bytes, len);
    b->blen += len;
}

static uint64_t acks_in; /* acks parsed by the server, whole run */

/* Takes the complete records at the front of buf[0..len): returns the bytes
 * taken. A record's size follows from its first byte (the type). */
static size_t server_records(const struct opts *o, struct sconn *c, struct batch *b,
                             const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        uint8_t type = buf[off];
        size_t need = type == REC_MSG ? o->frame : ACK_BYTES;
        if (type != REC_MSG && type != REC_ACK) {
            fprintf(stderr, "sammen-floor: server: a malformed record\n");
            exit(1);
        }
        if (len - off < need)
            break;
        struct rec r;
        memset(&r, 0, sizeof(r));
        memcpy(&r, buf + off, need < sizeof(r) ? need : sizeof(r));
        if (type == REC_MSG) {
            if (r.thread >= (uint32_t)o->threads || r.member >= (uint32_t)o->members) {
                fprintf(stderr, "sammen-floor: server: a message of no thread\n");
                exit(1);
            }
            batch_add(b, buf + off, need);
        } else {
            c->cursor = r.seq;
            acks_in++;
        }
        off += need;
    }
    return off;
}

/* Reads what a connection has; records to the gathering batch or the cursor.
 * One recv() unless it filled the buffer (epoll is level-triggered: what is
 * left is reported again). Returns -1 when the client closed it (the end). */
static int server_read(const struct opts *o, struct sconn *c, struct batch *b)
{
    for (;;) {
        size_t room = sizeof(c->in) - c->inlen;
        ssize_t k = recv(c->fd, c->in + c->inlen, room, 0);
        if (k == 0)
            return -1;
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            if (errno == ECONNRESET)
                return -1;
            die("server", "recv");
        }
        c->inlen += (size_t)k;
        size_t off = server_records(o, c, b, c->in, c->inlen);
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
        if ((size_t)k < room)
            return 0;
    }
}

static void run_server(const struct opts *o, int ls, uint64_t w0, uint64_t w1, struct srv_fig *fig)
{
    int nconn = o->threads * o->members;
    struct sconn *conns = xcalloc((size_t)nconn, sizeof(*conns));
    int *dirty = xcalloc((size_t)nconn, sizeof(int));
    int ep = epoll_create1(0);
    if (ep < 0)
        die("server", "epoll_create1");
    /* Connection i is thread i / M, member i % M: its hello says which. */
    for (int n = 0; n < nconn; n++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            die("server", "accept");
        struct rec h;
        memset(&h, 0, sizeof(h));
        size_t got = 0;
        while (got < ACK_BYTES) { /* blocking: the client sends it at connect */
            ssize_t k = recv(fd, (uint8_t *)&h + got, ACK_BYTES - got, 0);
            if (k <= 0 && !(k < 0 && errno == EINTR)) {
                fprintf(stderr, "sammen-floor: server: a connection without its hello\n");
                exit(1);
            }
            got += k > 0 ? (size_t)k : 0;
        }
        if (h.type != REC_HELLO || h.seq >= (uint32_t)nconn || conns[h.seq].fd) {
            fprintf(stderr, "sammen-floor: server: a bad hello\n");
            exit(1);
        }
        if (nonblocking_nodelay(fd, SO_SNDBUF, o->sockbuf) != 0)
            die("server", "socket options");
        conns[h.seq].fd = fd;
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = h.seq};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0)
            die("server", "epoll_ctl");
    }
    if (close(ls) != 0)
        die("server", "close");

    const char *tmp = getenv("TMPDIR");
    char path[4096];
    int plen = snprintf(path, sizeof(path), "%s/sammen-floor-XXXXXX",
                        tmp && *tmp ? tmp : "/tmp");
    if (plen < 0 || (size_t)plen >= sizeof(path)) {
        fprintf(stderr, "sammen-floor: server: TMPDIR is too long\n");
        exit(1);
    }
    sy.file = mkstemp(path);
    if (sy.file < 0)
        die("server", "the log file");
    if (unlink(path) != 0)
        die("server", "unlink of the log");
    sy.efd = eventfd(0, EFD_NONBLOCK);
    if (sy.efd < 0)
        die("server", "eventfd");
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sy.efd, &e) != 0)
        die("server", "epoll_ctl");
    pthread_t syt;
    if (pthread_create(&syt, NULL, syncer, NULL) != 0)
        die("server", "pthread_create");
    pool.conns = conns;
    pool.dirty = dirty;
    pool.workers = o->send_threads - 1;
    pthread_t *pt = xcalloc((size_t)o->send_threads, sizeof(pthread_t));
    for (int i = 0; i < pool.workers; i++)
        if (pthread_create(&pt[i], NULL, pool_worker, NULL) != 0)
            die("server", "pthread_create");

    struct batch bs[2];
    memset(bs, 0, sizeof(bs));
    int gather = 0, syncing = 0, done = 0, neof = 0;
    /* --flush-every: a deliberate delay, so that batches grow (0: send in
     * every turn, as soon as deliveries are there) */
    uint64_t flush_ns = (uint64_t)o->flush_ms * 1000000u, last_flush = 0;
    uint64_t turns = 0, frames = 0, syncs = 0;
    uint64_t t_turns = 0, t_sends = 0, t_frames = 0, t_syncs = 0, t_sync_ns = 0, t_at = 0;
    double c0 = 0;
    struct epoll_event ev[1024];
    while (!done) {
        int wait_ms = 50;
        if (pool.ndirty) { /* frames wait: until the next flush may go out */
            uint64_t at = last_flush + flush_ns, tn = now_ns();
            wait_ms = at > tn ? (int)((at - tn) / 1000000u) + 1 : 1;
            if (wait_ms > 50)
                wait_ms = 50;
        }
        int n = epoll_wait(ep, ev, 1024, wait_ms);
        if (n < 0 && errno != EINTR)
            die("server", "epoll_wait");
        uint64_t t = now_ns();
        uint64_t sent = __atomic_load_n(&pool.sent, __ATOMIC_RELAXED);
        uint64_t sync_ns = __atomic_load_n(&sy.ns, __ATOMIC_RELAXED);
        if (fig->measured == 0 && t >= w0) {
            c0 = cpu_s();
            t_turns = turns, t_sends = sent, t_frames = frames, t_syncs = syncs;
            t_sync_ns = sync_ns, t_at = t;
            fig->measured = 1;
        } else if (fig->measured == 1 && t >= w1) {
            fig->cpu_s = cpu_s() - c0;
            fig->window_s = (double)(t - t_at) / NS;
            fig->turns = turns - t_turns;
            fig->sends = sent - t_sends;
            fig->frames = frames - t_frames;
            fig->syncs = syncs - t_syncs;
            fig->sync_ns = sync_ns - t_sync_ns;
            fig->measured = 2;
        }
        turns++;
        for (int j = 0; j < n; j++) {
            uint32_t id = ev[j].data.u32;
            if (id == UINT32_MAX) {
                uint64_t v; /* the wake-up only: `done` says what happened */
                if (read(sy.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    die("server", "eventfd read");
            } else if (!conns[id].eof && server_read(o, &conns[id], &bs[gather]) < 0) {
                /* the client is done with it: read to the end, then stop
                 * watching it; the run ends when every connection has */
                conns[id].eof = 1;
                if (epoll_ctl(ep, EPOLL_CTL_DEL, conns[id].fd, NULL) != 0)
                    die("server", "epoll_ctl");
                if (++neof == nconn)
                    done = 1;
            }
        }
        /* checked every turn, not only when epoll reports the eventfd: with
         * more than 1,024 ready sockets its event may wait for later turns */
        if (syncing && __atomic_load_n(&sy.done, __ATOMIC_ACQUIRE)) {
            /* the synced batch is durable: each message, as received, to
             * the other members of its thread */
            __atomic_store_n(&sy.done, 0, __ATOMIC_RELAXED);
            struct batch *b = &bs[!gather];
            for (size_t off = 0; off < b->blen; off += o->frame) {
                const uint8_t *m = b->bytes + off;
                struct rec r;
                memcpy(&r, m, sizeof(r));
                for (int mb = 0; mb < o->members; mb++) {
                    if ((uint32_t)mb == r.member)
                        continue;
                    int ci = (int)r.thread * o->members + mb;
                    struct sconn *c = &conns[ci];
                    grow(&c->out, &c->outcap, c->outlen + o->frame);
                    memcpy(c->out + c->outlen, m, o->frame);
                    c->outlen += o->frame;
                    frames++;
                    if (!c->dirty) {
                        c->dirty = 1;
                        dirty[pool.ndirty++] = ci;
                    }
                }
            }
            b->blen = 0;
            syncing = 0;
            syncs++;
        }
        if (!syncing && bs[gather].blen) { /* group commit: hand over what gathered */
            if (pthread_mutex_lock(&sy.mu) != 0)
                abort();
            sy.job = &bs[gather];
            if (pthread_cond_signal(&sy.cv) != 0)
                abort();
            if (pthread_mutex_unlock(&sy.mu) != 0)
                abort();
            gather = !gather;
            syncing = 1;
        }
        if (pool.ndirty && !done && t - last_flush >= flush_ns) {
            last_flush = t;
            pool_flush();
            int keep = 0;
            for (int i = 0; i < pool.ndirty; i++) {
                struct sconn *c = &conns[dirty[i]];
                if (c->outlen)
                    dirty[keep++] = dirty[i];
                else
                    c->dirty = 0;
            }
            pool.ndirty = keep;
        }
    }
    /* the end: stop the helpers, free */
    if (pthread_mutex_lock(&pool.mu) != 0 || pthread_mutex_lock(&sy.mu) != 0)
        abort();
    pool.stop = 1;
    sy.stop = 1;
    if (pthread_cond_broadcast(&pool.go) != 0 || pthread_cond_signal(&sy.cv) != 0)
        abort();
    if (pthread_mutex_unlock(&sy.mu) != 0 || pthread_mutex_unlock(&pool.mu) != 0)
        abort();
    for (int i = 0; i < pool.workers; i++)
        if (pthread_join(pt[i], NULL) != 0)
            abort();
    if (pthread_join(syt, NULL) != 0)
        abort();
    fig->acks = acks_in;
    for (int i = 0; i < nconn; i++) {
        free(conns[i].out);
        (void)close(conns[i].fd);
    }
    for (int i = 0; i < 2; i++)
        free(bs[i].bytes);
    (void)close(sy.efd);
    (void)close(sy.file);
    (void)close(ep);
    free(pt);
    free(dirty);
    free(conns);
}

/* ================================================================ client */

struct cconn {
    int fd, ack_queued;
    uint32_t thread, member, seq, got;
    uint64_t last_ack;
    size_t inlen;
    uint32_t *last; /* per sender member: the last sequence received */
    uint8_t in[INBUF];
};

struct cfig {
    uint64_t sent, sent_w, received, received_w, expected, lost, dup, reorder, misrouted;
    uint64_t acks, acks_w, lat_n, lat_over;
    double cpu_w, load1; /* load1: the 1-minute load average at the window's start */
    unsigned long long st[2][8];
    uint32_t *hist;
};

static void procstat(unsigned long long v[8])
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) {
        memset(v, 0, 8 * sizeof(*v));
        return;
    }
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) != 8)
        memset(v, 0, 8 * sizeof(*v));
    (void)fclose(f);
}

static void client_send(int fd, const void *p, size_t n)
{
    /* A record goes out whole: on a full socket buffer (the server far
     * behind) the client waits here, as a blocking client would. */
    size_t off = 0;
    while (off < n) {
        ssize_t k = send(fd, (const uint8_t *)p + off, n - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            struct timespec ts = {0, 100000};
            (void)nanosleep(&ts, NULL);
            continue;
        }
        if (k < 0)
            die("client", "send");
        off += (size_t)k;
    }
}

static void client_ack(struct cconn *c, uint64_t t, struct cfig *f, int in_window)
{
    struct rec r;
    memset(&r, 0, sizeof(r));
    r.type = REC_ACK;
    r.seq = c->got;
    client_send(c->fd, &r, ACK_BYTES);
    c->last_ack = t;
    f->acks++;
    f->acks_w += (uint64_t)in_window;
}

/* Reads a connection's deliveries: accounting, sequence and routing checks,
 * latency from the send to this recv(). One recv() unless it filled the
 * buffer (level-triggered epoll reports the rest again). */
static void client_read(const struct opts *o, struct cconn *c, uint64_t w0, uint64_t w1,
                        struct cfig *f)
{
    for (;;) {
        size_t room = sizeof(c->in) - c->inlen;
        ssize_t k = recv(c->fd, c->in + c->inlen, room, 0);
        if (k == 0) {
            fprintf(stderr, "sammen-floor: client: the server closed a connection\n");
            exit(1);
        }
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            die("client", "recv");
        }
        uint64_t t = now_ns();
        c->inlen += (size_t)k;
        size_t off = 0;
        while (c->inlen - off >= o->frame) {
            struct rec d;
            memcpy(&d, c->in + off, sizeof(d));
            off += o->frame;
            if (d.type != REC_MSG || d.member >= (uint32_t)o->members) {
                fprintf(stderr, "sammen-floor: client: a malformed delivery\n");
                exit(1);
            }
            f->received++;
            f->received_w += (uint64_t)(t >= w0 && t < w1);
            c->got++;
            if (d.thread != c->thread || d.member == c->member) {
                f->misrouted++; /* another thread's, or its own message */
                continue;
            }
            uint32_t *last = &c->last[d.member];
            if (d.seq <= *last)
                f->dup++;
            else if (d.seq != *last + 1)
                f->reorder++;
            if (d.seq > *last)
                *last = d.seq;
            if (d.t_ns >= w0 && d.t_ns < w1) {
                uint64_t b = t > d.t_ns ? (t - d.t_ns) / HBUCKET_NS : 0;
                if (b >= HBUCKETS)
                    f->lat_over++;
                f->hist[b >= HBUCKETS ? HBUCKETS : b]++;
                f->lat_n++;
            }
        }
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
        if ((size_t)k < room)
            return;
    }
}

/* The p-quantile's bucket's upper edge in ms; -1 when it is in the overflow
 * bucket (10 s or more: printed as such, never as a figure). */
static double pct_ms(const struct cfig *f, double p)
{
    if (!f->lat_n)
        return 0;
    uint64_t want = (uint64_t)((double)f->lat_n * p), acc = 0;
    for (uint32_t i = 0; i < HBUCKETS; i++) {
        acc += f->hist[i];
        if (acc > want)
            return (double)(i + 1) * (double)HBUCKET_NS / 1e6;
    }
    return -1;
}

static void run_client(const struct opts *o, const struct sockaddr_in *a, uint64_t t0,
                       uint64_t w0, uint64_t w1, struct cfig *f)
{
    int n = o->threads * o->members;
    struct cconn *cs = xcalloc((size_t)n, sizeof(*cs));
    uint32_t *lasts = xcalloc((size_t)n * (size_t)o->members, sizeof(uint32_t));
    int *ackq = xcalloc((size_t)n, sizeof(int));
    uint8_t *msg = xcalloc(1, o->frame);
    memset(msg, 'm', o->frame);
    int ep = epoll_create1(0);
    if (ep < 0)
        die("client", "epoll_create1");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("client", "socket");
        if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0)
            die("client", "connect");
        struct rec h;
        memset(&h, 0, sizeof(h));
        h.type = REC_HELLO;
        h.seq = (uint32_t)i;
        client_send(fd, &h, ACK_BYTES);
        if (nonblocking_nodelay(fd, SO_RCVBUF, o->sockbuf) != 0)
            die("client", "socket options");
        cs[i].fd = fd;
        cs[i].thread = (uint32_t)(i / o->members);
        cs[i].member = (uint32_t)(i % o->members);
        cs[i].last = &lasts[(size_t)i * (size_t)o->members];
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0)
            die("client", "epoll_ctl");
    }
    uint64_t ts = now_ns(); /* sending starts: the rate counts from here */
    if (ts >= w0) {
        fprintf(stderr, "sammen-floor: making %d connections took %.1f s, longer than the "
                        "warm-up; give a longer --warmup\n",
                n, (double)(ts - t0) / NS);
        exit(1);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {{0, 1000000}, {0, 1000000}}; /* 1 ms */
    if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) != 0)
        die("client", "timerfd");
    struct epoll_event te = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te) != 0)
        die("client", "epoll_ctl");

    uint64_t aq_head = 0, aq_tail = 0;
    uint64_t ack_ns = o->ack_ms > 0 ? (uint64_t)o->ack_ms * 1000000u : 0;
    unsigned seed = 0x5a3eu;
    int phase = 0; /* 0 warm-up, 1 window, 2 drain */
    double c0 = 0;
    struct epoll_event ev[1024];
    for (;;) {
        int k = epoll_wait(ep, ev, 1024, 50);
        if (k < 0 && errno != EINTR)
            die("client", "epoll_wait");
        uint64_t t = now_ns();
        if (phase == 0 && t >= w0) {
            c0 = cpu_s();
            procstat(f->st[0]);
            double la[1];
            f->load1 = getloadavg(la, 1) == 1 ? la[0] : -1;
            phase = 1;
        } else if (phase == 1 && t >= w1) {
            f->cpu_w = cpu_s() - c0;
            procstat(f->st[1]);
            phase = 2;
        }
        if (phase == 2 && (f->received >= f->sent * (uint64_t)(o->members - 1) ||
                           t >= w1 + DRAIN_NS))
            break;
        int in_w = phase == 1;
        for (int j = 0; j < k; j++) {
            uint32_t id = ev[j].data.u32;
            if (id != UINT32_MAX) {
                struct cconn *c = &cs[id];
                client_read(o, c, w0, w1, f);
                if (o->ack_ms < 0 || c->ack_queued)
                    continue;
                if (t - c->last_ack >= ack_ns) {
                    client_ack(c, t, f, in_w);
                } else {
                    c->ack_queued = 1;
                    ackq[aq_tail++ % (uint64_t)n] = (int)id;
                }
                continue;
            }
            uint64_t v;
            if (read(tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                die("client", "timerfd read");
            if (t < w1) { /* the messages due by now, from random members */
                uint64_t due = (uint64_t)(o->rate * (double)(t - ts) / NS);
                while (f->sent < due) {
                    uint32_t th = (uint32_t)rand_r(&seed) % (uint32_t)o->threads;
                    uint32_t mb = (uint32_t)rand_r(&seed) % (uint32_t)o->members;
                    struct cconn *c = &cs[th * (uint32_t)o->members + mb];
                    struct rec r;
                    memset(&r, 0, sizeof(r));
                    r.type = REC_MSG;
                    r.thread = th;
                    r.member = mb;
                    r.seq = ++c->seq;
                    r.t_ns = now_ns();
                    memcpy(msg, &r, sizeof(r));
                    client_send(c->fd, msg, o->frame);
                    f->sent++;
                    f->sent_w += (uint64_t)in_w;
                }
            }
            while (aq_head != aq_tail) { /* the acks whose time came, oldest first */
                struct cconn *c = &cs[ackq[aq_head % (uint64_t)n]];
                if (t - c->last_ack < ack_ns)
                    break;
                aq_head++;
                c->ack_queued = 0;
                client_ack(c, t, f, in_w);
            }
        }
    }
    f->expected = f->sent * (uint64_t)(o->members - 1);
    f->lost = f->received < f->expected ? f->expected - f->received : 0;
    for (int i = 0; i < n; i++)
        (void)close(cs[i].fd);
    (void)close(tfd);
    (void)close(ep);
    free(msg);
    free(ackq);
    free(lasts);
    free(cs);
}

/* ================================================================ report */

/* Every delivery arrived once, in order, where it belongs; both processes
 * measured the window. */
static int floor_ok(const struct cfig *f, const struct srv_fig *s)
{
    return f->lost == 0 && f->dup == 0 && f->reorder == 0 && f->misrouted == 0 &&
           f->received == f->expected && s->measured == 2;
}

static void report(const struct opts *o, const struct cfig *f, const struct srv_fig *s)
{
    double w = o->duration, tot = 0, pc[8];
    for (int i = 0; i < 8; i++)
        tot += (double)(f->st[1][i] - f->st[0][i]);
    for (int i = 0; i < 8; i++)
        pc[i] = tot > 0 ? 100.0 * (double)(f->st[1][i] - f->st[0][i]) / tot : 0;
    double sw = s->window_s > 0 ? s->window_s : w; /* the server's own window */
    double dps = (double)f->received_w / w;
    double srv_us = dps > 0 ? s->cpu_s / sw * 1e6 / dps : 0;
    double cli_us = f->received_w ? f->cpu_w * 1e6 / (double)f->received_w : 0;
    double fps = s->sends ? (double)s->frames / (double)s->sends : 0;
    double sync_ms = s->syncs ? (double)s->sync_ns / 1e6 / (double)s->syncs : 0;
    double pq[3] = {pct_ms(f, 0.5), pct_ms(f, 0.99), pct_ms(f, 0.999)};
    char ps[3][32];
    for (int i = 0; i < 3; i++) {
        if (pq[i] < 0)
            snprintf(ps[i], sizeof(ps[i]), "%s", o->json ? "null" : ">= 10000");
        else
            snprintf(ps[i], sizeof(ps[i]), "%.2f", pq[i]);
    }
    int ok = floor_ok(f, s);
    if (o->json) {
        printf("{\"tool\":\"sammen-floor\",\"ok\":%s,"
               "\"params\":{\"threads\":%d,\"members\":%d,\"rate\":%.0f,\"duration_s\":%.3g,"
               "\"warmup_s\":%.3g,\"frame_bytes\":%zu,\"ack_every_ms\":%d,\"send_threads\":%d,"
               "\"flush_every_ms\":%d},"
               "\"figures\":{\"sent\":%llu,\"expected\":%llu,\"received\":%llu,\"lost\":%llu,"
               "\"duplicated\":%llu,\"out_of_order\":%llu,\"misrouted\":%llu,"
               "\"msgs_per_s\":%.1f,\"deliveries_per_s\":%.1f,"
               "\"latency_ms\":{\"p50\":%s,\"p99\":%s,\"p99_9\":%s,\"count\":%llu,"
               "\"over_10s\":%llu},"
               "\"server_cores\":%.3f,\"server_us_per_delivery\":%.3f,"
               "\"server_turns_per_s\":%.1f,\"server_sends_per_s\":%.1f,"
               "\"server_frames_per_send\":%.2f,\"server_syncs_per_s\":%.1f,"
               "\"server_sync_ms_mean\":%.3f,"
               "\"client_cores\":%.3f,\"client_us_per_delivery\":%.3f,\"acks_per_s\":%.1f,"
               "\"acks_sent\":%llu,\"acks_received\":%llu,\"load_avg_1m\":%.2f,"
               "\"machine_pct\":{\"user\":%.1f,\"system\":%.1f,\"softirq\":%.1f,"
               "\"idle\":%.1f,\"iowait\":%.1f}}}\n",
               ok ? "true" : "false", o->threads, o->members, o->rate, o->duration, o->warmup,
               o->frame, o->ack_ms, o->send_threads, o->flush_ms, (unsigned long long)f->sent,
               (unsigned long long)f->expected, (unsigned long long)f->received,
               (unsigned long long)f->lost, (unsigned long long)f->dup,
               (unsigned long long)f->reorder, (unsigned long long)f->misrouted,
               (double)f->sent_w / w, dps, ps[0], ps[1], ps[2], (unsigned long long)f->lat_n,
               (unsigned long long)f->lat_over, s->cpu_s / sw, srv_us, (double)s->turns / sw,
               (double)s->sends / sw, fps, (double)s->syncs / sw, sync_ms, f->cpu_w / w, cli_us,
               (double)f->acks_w / w, (unsigned long long)f->acks, (unsigned long long)s->acks,
               f->load1, pc[0] + pc[1], pc[2], pc[6], pc[3], pc[4]);
    } else {
        printf("sammen-floor: %d threads x %d members, %.0f msgs/s offered, %.3g s measured "
               "after %.3g s, frames of %zu bytes, ack every %d ms, %d send thread(s)\n",
               o->threads, o->members, o->rate, o->duration, o->warmup, o->frame, o->ack_ms,
               o->send_threads);
        if (o->flush_ms)
            printf("  %-30s %d ms\n", "server flushes at most every", o->flush_ms);
        printf("  %-30s %.0f\n", "messages/s sent", (double)f->sent_w / w);
        printf("  %-30s %.0f\n", "deliveries/s received", dps);
        printf("  %-30s %llu of %llu (lost %llu, duplicated %llu, out of order %llu, "
               "misrouted %llu)\n",
               "deliveries", (unsigned long long)f->received, (unsigned long long)f->expected,
               (unsigned long long)f->lost, (unsigned long long)f->dup,
               (unsigned long long)f->reorder, (unsigned long long)f->misrouted);
        printf("  %-30s p50 %s  p99 %s  p99.9 %s ms (%llu of 10 s or more)\n",
               "latency, send to receipt", ps[0], ps[1], ps[2],
               (unsigned long long)f->lat_over);
        printf("  %-30s %.2f cores, %.2f us per delivery\n", "server CPU", s->cpu_s / sw,
               srv_us);
        printf("  %-30s %.0f turns/s, %.0f sends/s, %.2f frames/send, %.0f syncs/s of "
               "%.3f ms\n",
               "server loop", (double)s->turns / sw, (double)s->sends / sw, fps,
               (double)s->syncs / sw, sync_ms);
        printf("  %-30s %.2f cores, %.2f us per delivery, %.0f acks/s (%llu sent, %llu "
               "received)\n",
               "client CPU", f->cpu_w / w, cli_us, (double)f->acks_w / w,
               (unsigned long long)f->acks, (unsigned long long)s->acks);
        printf("  %-30s user %.1f%%  system %.1f%%  softirq %.1f%%  idle %.1f%%  iowait "
               "%.1f%%  load %.2f\n",
               "machine (/proc/stat)", pc[0] + pc[1], pc[2], pc[6], pc[3], pc[4], f->load1);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sammen-floor [options]\n"
            "The care workload's traffic between a server that only moves it and a client,\n"
            "on loopback: the floor under what sammen-server and sammen-bench can do here.\n"
            "  --threads T        threads (default 1000)\n"
            "  --members M        members per thread, 2..%d (default 10)\n"
            "  --rate R           messages per second from random members (default 20000)\n"
            "  --duration D       seconds measured (default 5)\n"
            "  --warmup W         seconds before the window (default 4)\n"
            "  --frame BYTES      bytes of a message and of a delivery, %zu..%d (default 300)\n"
            "  --ack-every MS     a member's acks at most every MS ms; -1: none (default 20)\n"
            "  --send-threads N   server threads sending, 1..16 (default 1)\n"
            "  --flush-every MS   the server sends a connection's frames at most every MS ms\n"
            "                     (default 0: in every loop turn, as soon as they are there)\n"
            "  --sockbuf BYTES    the server's SO_SNDBUF and the client's SO_RCVBUF\n"
            "                     (default: the kernel's); small values force partial sends\n"
            "  --json             one JSON document instead of the table\n"
            "At most %d connections (T x M): one source address.\n",
            MEMBERS_MAX, sizeof(struct rec), FRAME_MAX, CONNS_MAX);
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.threads = 1000, .members = 10, .send_threads = 1, .ack_ms = 20,
                     .frame = 300, .rate = 20000, .duration = 5, .warmup = 4};
    static const struct option lo[] = {
        {"threads", required_argument, NULL, 't'},   {"members", required_argument, NULL, 'm'},
        {"rate", required_argument, NULL, 'r'},      {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},    {"frame", required_argument, NULL, 'f'},
        {"ack-every", required_argument, NULL, 'a'}, {"send-threads", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},            {"help", no_argument, NULL, 'h'},
        {"sockbuf", required_argument, NULL, 'b'}, {"flush-every", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        double v = 0;
        int bad = 0, fr = 0;
        switch (ch) {
        case 't': bad = parse_int(optarg, 1, CONNS_MAX, &o.threads); break;
        case 'm': bad = parse_int(optarg, 2, MEMBERS_MAX, &o.members); break;
        case 'r': bad = parse_num(optarg, 1, 1e6, &v); o.rate = v; break;
        case 'd': bad = parse_num(optarg, 0.1, 3600, &v); o.duration = v; break;
        case 'w': bad = parse_num(optarg, 0.1, 600, &v); o.warmup = v; break;
        case 'f': bad = parse_int(optarg, (int)sizeof(struct rec), FRAME_MAX, &fr);
                  o.frame = (size_t)fr; break;
        case 'a': bad = parse_int(optarg, -1, 60000, &o.ack_ms); break;
        case 's': bad = parse_int(optarg, 1, 16, &o.send_threads); break;
        case 'b': bad = parse_int(optarg, 0, 1 << 24, &o.sockbuf); break;
        case 'F': bad = parse_int(optarg, 0, 10000, &o.flush_ms); break;
        case 'j': o.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            const char *name = "?";
            for (const struct option *p = lo; p->name; p++)
                if (p->val == ch)
                    name = p->name;
            fprintf(stderr, "sammen-floor: --%s %s: out of range or not a number\n", name,
                    optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sammen-floor: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    struct rlimit rl;
    long conns = (long)o.threads * o.members;
    if (conns > CONNS_MAX) {
        fprintf(stderr, "sammen-floor: %ld connections: at most %d from one source address; "
                        "use fewer threads or members\n",
                conns, CONNS_MAX);
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)conns + 32 > rl.rlim_cur) {
        fprintf(stderr, "sammen-floor: %ld connections need more open files than this "
                        "process may have (%llu); use fewer threads or members\n",
                conns, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("floor", "signal");

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0)
        die("floor", "listening on 127.0.0.1");
    struct srv_fig *sf = mmap(NULL, sizeof(*sf), PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sf == MAP_FAILED)
        die("floor", "mmap");
    memset(sf, 0, sizeof(*sf));
    uint64_t t0 = now_ns();
    uint64_t w0 = t0 + (uint64_t)(o.warmup * NS), w1 = w0 + (uint64_t)(o.duration * NS);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("floor", "fork");
    if (pid == 0) { /* the server: it dies with the client, even mid-set-up */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(1);
        run_server(&o, ls, w0, w1, sf);
        _exit(0);
    }
    (void)close(ls);
    struct cfig f;
    memset(&f, 0, sizeof(f));
    f.hist = xcalloc(HBUCKETS + 1, sizeof(uint32_t));
    run_client(&o, &a, t0, w0, w1, &f);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        die("floor", "waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "sammen-floor: the server process failed (status %d)\n", st);
        return 1;
    }
    report(&o, &f, sf);
    int ok = floor_ok(&f, sf);
    free(f.hist);
    (void)munmap(sf, sizeof(*sf));
    return ok ? 0 : 1;
}
