/*
 * loadgen — acerelay's own load generator for long-lived MPEG-TS streams.
 *
 * Opens N HTTP/1.1 connections to one URL, ramps them in at a set rate and
 * reads each one at a set bitrate through a per-connection token bucket, the
 * way a real player drains its socket. While reading it checks what a player
 * would see: the HTTP status, 188-byte packet framing (sync byte 0x47), the
 * continuity counter of every PID, time to first body byte, stalls. At the end
 * it prints one JSON object on stdout; progress and the measurement-window
 * markers go to stderr ("loadgen: window-start" / "loadgen: window-end"), so a
 * runner can sample the server under test over exactly the same window.
 *
 * Design notes
 * - Edge-triggered epoll plus a "readable" flag per connection: most sockets
 *   always hold data (the server is ahead of the player), so level-triggered
 *   polling would spin on connections whose token bucket is empty.
 * - Buckets are refilled on a periodic tick (default 20 ms); one read per
 *   connection per tick keeps syscalls bounded (50 reads/s per player).
 * - The TS checker touches only the first 6 bytes of each packet and skips the
 *   rest, so checking costs little next to the kernel's copy.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TS_PACKET 188
#define TS_SYNC 0x47
#define PID_NULL 0x1FFF
/* A programme has a handful of PIDs; more than this are left unchecked (counted). */
#define MAX_PIDS 16
#define HEAD_MAX 4096
#define READ_BUF (256 * 1024)
#define MAX_EVENTS 1024
#define NS 1000000000LL

/* ---- configuration ---------------------------------------------------- */

struct config {
    char host[256];
    int port;
    char path[1024];
    int players;
    double ramp;          /* new connections per second */
    double rate_bps;      /* target read rate per normal player, bits/s; 0 = unlimited */
    double duration;      /* seconds from start to the end of the run */
    double warmup;        /* seconds after the last player joined before measuring */
    int threads;
    double slow_fraction;
    double slow_rate_div;
    double stall_s;
    double tick_s;
    double bucket_s;      /* bucket depth in seconds of the player's rate; 0 = max(200 ms, 5 ticks) */
    int rcvbuf;           /* SO_RCVBUF, 0 = kernel default (autotuning) */
    int min_read;         /* a throttled player waits for this many tokens */
    bool per_player_rates;
};

static struct config cfg = {
    .host = "127.0.0.1",
    .port = 0,
    .path = "/",
    .players = 100,
    .ramp = 500,
    .rate_bps = 8e6,
    .duration = 20,
    .warmup = 3,
    .threads = 1,
    .slow_fraction = 0,
    .slow_rate_div = 10,
    .stall_s = 1.0,
    .tick_s = 0.020,
    .bucket_s = 0,
    .rcvbuf = 0,
    .min_read = 4096,
    .per_player_rates = true,
};

static struct sockaddr_in server_addr;
static char request[2048];
static size_t request_len;

/* ---- per-player state --------------------------------------------------- */

enum pstate { P_WAITING, P_CONNECTING, P_HEAD, P_BODY, P_DONE };

/* How a player's run ended (E_NONE: it streamed to the end). */
enum pend {
    E_NONE,
    E_CONNECT,            /* connect() or sending the request failed */
    E_HTTP_STATUS,        /* a status other than 200 */
    E_BAD_HEAD,           /* no parsable response head */
    E_CLOSED_BEFORE_BODY, /* the server closed before the first body byte */
    E_NO_RESPONSE,        /* still waiting for the head when the run ended */
    E_NO_BODY,            /* got 200 but not one body byte by the end */
    E_EOF,                /* the stream ended before the run did */
    E_RESET,              /* the stream failed before the run ended */
    E_COUNT
};

/* Chunked transfer decoding, for pointing loadgen at an engine directly. */
enum chunk_state { CH_SIZE, CH_SIZE_LINE, CH_DATA, CH_DATA_END, CH_FINISHED };

struct pid_cc {
    uint16_t pid;
    uint8_t cc;
    uint8_t used;
};

struct player {
    int fd;
    int index;
    uint8_t state;        /* enum pstate */
    uint8_t end;          /* enum pend */
    bool slow;
    bool readable;        /* epoll reported data and no read has since come up short */
    bool peer_closed;     /* EPOLLRDHUP seen: no further edge will come, read to EOF */
    bool chunked;
    bool synced;          /* locked on the 188-byte packet grid */
    uint8_t confirm;      /* sync bytes seen while re-locking after a desync */
    bool stall_counted;
    uint8_t chunk_state;
    uint64_t chunk_left;

    double rate;          /* bytes/s, 0 = unlimited */
    double tokens;        /* bytes the player may read now */
    double bucket;        /* maximum tokens */
    int64_t t_refill;

    int64_t t_start;      /* connect() issued */
    int64_t t_first_byte; /* first body byte (0 = none) */
    int64_t starve_since; /* wanted data and found none since (0 = not starving) */

    uint64_t bytes;       /* body bytes */
    uint64_t bytes_at_window;
    int64_t t_window;     /* when bytes_at_window was taken (0 = not taken) */
    /* Latest tick's snapshot: the rate is measured tick to tick so a partial tick at the end does not count. */
    uint64_t bytes_at_tick;
    int64_t t_tick;
    double rate_bps;      /* result: achieved rate over the window */

    int status;
    char *head;           /* response head buffer, freed once the body starts */
    uint16_t head_len;

    uint8_t pkt_pos;      /* position inside the current packet */
    uint8_t hdr[6];
    uint32_t cc_errors;
    uint32_t desyncs;
    uint32_t stalls;
    uint32_t untracked_pids;
    int64_t stall_ns;
    uint8_t last_pid_slot; /* most packets are video: try its slot first */
    struct pid_cc ccs[MAX_PIDS];
};

struct worker {
    pthread_t thread;
    int epfd;
    struct player **players;  /* this worker's share, in ramp order */
    int count;
    int next_connect;         /* index into players of the next to connect */
    /* tick lag over the measurement window: how late the loop ran its ticks */
    double lag_sum_ms;
    double lag_max_ms;
    long lag_ticks;
};

static struct player *all_players;
static int64_t t_origin;       /* monotonic start of the run */
static int64_t t_window_start; /* all players joined + warm-up */
static int64_t t_run_end;

static volatile sig_atomic_t interrupted;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- TS checking -------------------------------------------------------- */

/* h: the first 6 bytes of a packet. */
static void check_cc(struct player *p, const uint8_t *h)
{
    unsigned pid = ((unsigned)(h[1] & 0x1F) << 8) | h[2];
    if (pid == PID_NULL)
        return;
    unsigned afc = (h[3] >> 4) & 3;
    unsigned cc = h[3] & 0x0F;
    /* adaptation_field_length > 0 and discontinuity_indicator set: a jump is announced */
    bool discontinuity = (afc & 2) && h[4] > 0 && (h[5] & 0x80);

    struct pid_cc *e = &p->ccs[p->last_pid_slot];
    if (!e->used || e->pid != pid) {
        e = NULL;
        for (int i = 0; i < MAX_PIDS; i++) {
            if (!p->ccs[i].used || p->ccs[i].pid == pid) {
                e = &p->ccs[i];
                p->last_pid_slot = (uint8_t)i;
                break;
            }
        }
    }
    if (e == NULL) {
        p->untracked_pids++;
        return;
    }
    if (!e->used) {
        e->used = 1;
        e->pid = (uint16_t)pid;
        e->cc = (uint8_t)cc;
        return;
    }
    /* Packets without payload must repeat the counter: nothing to check. */
    if (!(afc & 1))
        return;
    /* ISO 13818-1 allows a packet to be sent twice (same CC). */
    if (!discontinuity && cc != e->cc && cc != ((e->cc + 1u) & 0x0F))
        p->cc_errors++;
    e->cc = (uint8_t)cc;
}

/*
 * Feed body bytes through the packet checker. Only the first 6 bytes of each
 * packet are inspected. Whole packets on the grid take the fast path; packets
 * split across reads, and re-locking after a desync, go byte by byte.
 */
static void ts_feed(struct player *p, const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p->pkt_pos == 0 && p->synced) {
            while (n - i >= TS_PACKET && b[i] == TS_SYNC) {
                check_cc(p, b + i);
                i += TS_PACKET;
            }
            if (i == n)
                return;
        }
        if (p->pkt_pos == 0) {
            if (b[i] == TS_SYNC) {
                if (!p->synced && ++p->confirm >= 3) {
                    p->synced = true;
                    /* counters seen before the desync say nothing about what follows */
                    memset(p->ccs, 0, sizeof p->ccs);
                }
            } else {
                if (p->synced) {
                    p->desyncs++;
                    p->synced = false;
                }
                p->confirm = 0;
                /* hunt for the next candidate sync byte */
                const uint8_t *s = memchr(b + i, TS_SYNC, n - i);
                if (s == NULL)
                    return;
                i = (size_t)(s - b);
                continue;
            }
        }
        if (p->pkt_pos < sizeof p->hdr) {
            p->hdr[p->pkt_pos++] = b[i++];
            if (p->pkt_pos == sizeof p->hdr && p->synced)
                check_cc(p, p->hdr);
            continue;
        }
        size_t skip = TS_PACKET - p->pkt_pos;
        if (skip > n - i)
            skip = n - i;
        i += skip;
        p->pkt_pos = (uint8_t)(p->pkt_pos + skip);
        if (p->pkt_pos == TS_PACKET)
            p->pkt_pos = 0;
    }
}

/* Body bytes as the player sees them (after chunked decoding). */
static void body_bytes(struct player *p, const uint8_t *b, size_t n, int64_t now)
{
    if (n == 0)
        return;
    if (p->t_first_byte == 0)
        p->t_first_byte = now;
    p->bytes += n;
    ts_feed(p, b, n);
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A malformed size line is skipped to its end rather than trusted. */
static void dechunk(struct player *p, const uint8_t *b, size_t n, int64_t now)
{
    size_t i = 0;
    while (i < n) {
        switch (p->chunk_state) {
        case CH_SIZE: {
            int v = hexval(b[i]);
            if (v >= 0) {
                p->chunk_left = p->chunk_left * 16 + (uint64_t)v;
                i++;
            } else {
                p->chunk_state = CH_SIZE_LINE;
            }
            break;
        }
        case CH_SIZE_LINE: /* chunk extensions up to LF */
            if (b[i++] == '\n')
                p->chunk_state = p->chunk_left ? CH_DATA : CH_FINISHED;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > p->chunk_left)
                take = (size_t)p->chunk_left;
            body_bytes(p, b + i, take, now);
            i += take;
            p->chunk_left -= take;
            if (p->chunk_left == 0)
                p->chunk_state = CH_DATA_END;
            break;
        }
        case CH_DATA_END: /* CRLF after the data */
            if (b[i++] == '\n')
                p->chunk_state = CH_SIZE;
            break;
        default: /* CH_FINISHED: nothing follows the last chunk */
            return;
        }
    }
}

static void feed(struct player *p, const uint8_t *b, size_t n, int64_t now)
{
    if (p->chunked)
        dechunk(p, b, n, now);
    else
        body_bytes(p, b, n, now);
}

/* ---- connection handling ------------------------------------------------ */

static void player_stop(struct player *p, enum pend why)
{
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    free(p->head);
    p->head = NULL;
    p->state = P_DONE;
    p->end = (uint8_t)why;
}

static void player_connect(struct worker *w, struct player *p, int64_t now)
{
    p->t_start = now;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        player_stop(p, E_CONNECT);
        return;
    }
    p->fd = fd;
    if (cfg.rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg.rcvbuf, sizeof cfg.rcvbuf);
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS) {
        player_stop(p, E_CONNECT);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = p};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        player_stop(p, E_CONNECT);
        return;
    }
    p->state = P_CONNECTING;
}

static void send_request(struct player *p)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        player_stop(p, E_CONNECT);
        return;
    }
    /* A fresh socket's send buffer always takes a request this small whole. */
    ssize_t n = send(p->fd, request, request_len, MSG_NOSIGNAL);
    if (n != (ssize_t)request_len) {
        player_stop(p, E_CONNECT);
        return;
    }
    p->head = malloc(HEAD_MAX);
    if (p->head == NULL) {
        player_stop(p, E_CONNECT);
        return;
    }
    p->head_len = 0;
    p->state = P_HEAD;
}

static void refill(struct player *p, int64_t now)
{
    if (p->rate <= 0)
        return;
    p->tokens += p->rate * (double)(now - p->t_refill) / (double)NS;
    if (p->tokens > p->bucket)
        p->tokens = p->bucket;
    p->t_refill = now;
}

/* Parse the status line and the headers we care about; returns header length or 0. */
static size_t parse_head(struct player *p)
{
    char *end = memmem(p->head, p->head_len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t hlen = (size_t)(end - p->head) + 4;
    int status = 0;
    if (sscanf(p->head, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    p->status = status;
    /* Case-insensitive look for chunked encoding within the head only. */
    char saved = p->head[hlen - 1];
    p->head[hlen - 1] = '\0';
    char *te = strcasestr(p->head, "\ntransfer-encoding:");
    if (te != NULL) {
        char *eol = strchr(te + 1, '\n');
        char *ch = strcasestr(te, "chunked");
        if (ch != NULL && (eol == NULL || ch < eol))
            p->chunked = true;
    }
    p->head[hlen - 1] = saved;
    return hlen;
}

static void read_head(struct player *p, uint8_t *buf, int64_t now)
{
    for (;;) {
        ssize_t n = read(p->fd, p->head + p->head_len, HEAD_MAX - p->head_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                p->readable = false;
            else
                player_stop(p, E_CLOSED_BEFORE_BODY);
            return;
        }
        if (n == 0) {
            player_stop(p, p->head_len ? E_BAD_HEAD : E_CLOSED_BEFORE_BODY);
            return;
        }
        p->head_len = (uint16_t)(p->head_len + n);
        size_t hlen = parse_head(p);
        if (hlen == 0) {
            if (p->head_len >= HEAD_MAX)
                player_stop(p, E_BAD_HEAD);
            continue;
        }
        if (p->status != 200) {
            player_stop(p, p->status < 0 ? E_BAD_HEAD : E_HTTP_STATUS);
            return;
        }
        size_t rest = p->head_len - hlen;
        memcpy(buf, p->head + hlen, rest);
        free(p->head);
        p->head = NULL;
        p->state = P_BODY;
        p->t_refill = now;
        if (rest) {
            p->tokens -= (double)rest;
            feed(p, buf, rest, now);
        }
        return;
    }
}

/* Read as much body as the bucket allows. */
static void read_body(struct player *p, uint8_t *buf, int64_t now)
{
    refill(p, now);
    while (p->readable) {
        size_t want = READ_BUF;
        if (p->rate > 0) {
            if (p->tokens < cfg.min_read)
                return;
            if (want > p->tokens)
                want = (size_t)p->tokens;
        }
        ssize_t n = read(p->fd, buf, want);
        if (n > 0) {
            p->tokens -= (double)n;
            if (p->stall_counted)
                p->stall_ns += now - p->starve_since;
            p->stall_counted = false;
            p->starve_since = 0;
            feed(p, buf, (size_t)n, now);
            /*
             * A short read on TCP means the queue is empty; the next edge says when
             * it is not. Once the peer has closed there is no next edge: read on to EOF.
             */
            if ((size_t)n < want && !p->peer_closed) {
                p->readable = false;
                p->starve_since = now;
            }
            continue;
        }
        if (n == 0) {
            player_stop(p, E_EOF);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            p->readable = false;
            if (p->starve_since == 0)
                p->starve_since = now;
            return;
        }
        player_stop(p, E_RESET);
        return;
    }
}

static void on_event(struct player *p, uint32_t events, uint8_t *buf, int64_t now)
{
    if (p->state == P_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            send_request(p);
        if (p->state != P_HEAD)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        p->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        p->peer_closed = true;
    if (!p->readable)
        return;
    if (p->state == P_HEAD)
        read_head(p, buf, now);
    if (p->state == P_BODY)
        read_body(p, buf, now);
}

static void tick(struct worker *w, uint8_t *buf, int64_t now)
{
    int64_t stall_ns = (int64_t)(cfg.stall_s * NS);
    bool take_window = now >= t_window_start;
    for (int i = 0; i < w->next_connect; i++) {
        struct player *p = w->players[i];
        if (take_window && p->t_window == 0) {
            p->t_window = now;
            p->bytes_at_window = p->bytes;
        }
        if (p->state != P_BODY)
            continue;
        if (p->readable)
            read_body(p, buf, now);
        else
            refill(p, now);
        if (take_window) {
            p->bytes_at_tick = p->bytes;
            p->t_tick = now;
        }
        /* Stalls count only once the stream has started: TTFB covers the start. */
        if (p->state == P_BODY && p->starve_since && p->t_first_byte && !p->stall_counted &&
            now - p->starve_since > stall_ns) {
            p->stalls++;
            p->stall_counted = true;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t *buf = malloc(READ_BUF);
    struct epoll_event *events = calloc(MAX_EVENTS, sizeof *events);
    if (buf == NULL || events == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    int64_t tick_ns = (int64_t)(cfg.tick_s * NS);
    int64_t next_tick = t_origin + tick_ns;

    while (!interrupted) {
        int64_t now = now_ns();
        if (now >= t_run_end)
            break;
        while (w->next_connect < w->count) {
            struct player *p = w->players[w->next_connect];
            int64_t due = t_origin + (int64_t)((double)p->index / cfg.ramp * NS);
            if (due > now)
                break;
            w->next_connect++;
            player_connect(w, p, now);
        }
        if (now >= next_tick) {
            if (now >= t_window_start) {
                double lag = (double)(now - next_tick) / 1e6;
                w->lag_sum_ms += lag;
                w->lag_ticks++;
                if (lag > w->lag_max_ms)
                    w->lag_max_ms = lag;
            }
            tick(w, buf, now);
            next_tick += tick_ns;
            /* If we fell far behind, do not replay every missed tick. */
            if (next_tick < now)
                next_tick = now + tick_ns;
        }
        int64_t wake = next_tick < t_run_end ? next_tick : t_run_end;
        if (w->next_connect < w->count) {
            int64_t due = t_origin + (int64_t)((double)w->players[w->next_connect]->index / cfg.ramp * NS);
            if (due < wake)
                wake = due;
        }
        int timeout_ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            exit(1);
        }
        now = now_ns();
        for (int i = 0; i < n; i++)
            on_event(events[i].data.ptr, events[i].events, buf, now);
    }

    /* Close the books on every player this worker owns. */
    int64_t end = now_ns();
    for (int i = 0; i < w->count; i++) {
        struct player *p = w->players[i];
        if (p->stall_counted)
            p->stall_ns += end - p->starve_since;
        if (p->state == P_CONNECTING || p->state == P_HEAD)
            player_stop(p, E_NO_RESPONSE);
        else if (p->state == P_BODY && p->t_first_byte == 0)
            player_stop(p, E_NO_BODY);
        /* A player that stopped early is measured up to the end: it delivered nothing after. */
        int64_t upto = p->state == P_DONE || p->t_tick == 0 ? end : p->t_tick;
        uint64_t got = p->state == P_DONE || p->t_tick == 0 ? p->bytes : p->bytes_at_tick;
        double span = p->t_window ? (double)(upto - p->t_window) / NS : 0;
        p->rate_bps = span > 0 ? (double)(got - p->bytes_at_window) * 8 / span : 0;
        if (p->fd >= 0) {
            close(p->fd);
            p->fd = -1;
        }
        free(p->head);
        p->head = NULL;
    }
    free(buf);
    free(events);
    return NULL;
}

/* ---- results ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, double p)
{
    if (n == 0)
        return NAN;
    int k = (int)ceil(p / 100.0 * n) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k];
}

static void json_num(const char *key, double v, bool comma)
{
    if (isnan(v))
        printf("\"%s\":null%s", key, comma ? "," : "");
    else
        printf("\"%s\":%.3f%s", key, v, comma ? "," : "");
}

static void json_dist(const char *key, double *v, int n, double scale)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    printf("\"%s\":{\"count\":%d,", key, n);
    json_num("min", n ? v[0] * scale : NAN, true);
    json_num("p1", pct(v, n, 1) * scale, true);
    json_num("p5", pct(v, n, 5) * scale, true);
    json_num("p50", pct(v, n, 50) * scale, true);
    json_num("p99", pct(v, n, 99) * scale, true);
    json_num("mean", n ? sum / n * scale : NAN, true);
    json_num("max", n ? v[n - 1] * scale : NAN, false);
    printf("}");
}

struct group_totals {
    int players, streamed, disconnected_early, below_95;
    uint64_t cc_errors, desyncs, stalls, cc_error_players, untracked_pids;
    double stall_s;
};

static void report(struct worker *workers, double user_pct, double sys_pct, double window_s)
{
    double cpu_pct = user_pct + sys_pct;
    int n = cfg.players;
    double *ttfb = malloc(sizeof(double) * (size_t)n);
    double *rates = malloc(sizeof(double) * (size_t)n);
    double *slow_rates = malloc(sizeof(double) * (size_t)n);
    int nt = 0, nr = 0, ns = 0;
    struct group_totals g[2] = {{0}};
    int ends[E_COUNT] = {0};
    int chunked = 0, bad_status = 0;
    uint64_t bytes = 0;
    double aggregate_bps = 0;
    double target = cfg.rate_bps;

    for (int i = 0; i < n; i++) {
        struct player *p = &all_players[i];
        struct group_totals *t = &g[p->slow];
        t->players++;
        ends[p->end]++;
        bytes += p->bytes;
        if (p->end == E_HTTP_STATUS)
            bad_status = p->status;
        chunked += p->chunked;
        if (p->t_first_byte) {
            t->streamed++;
            ttfb[nt++] = (double)(p->t_first_byte - p->t_start) / 1e6;
        }
        if (p->end == E_EOF || p->end == E_RESET)
            t->disconnected_early++;
        t->cc_errors += p->cc_errors;
        t->cc_error_players += p->cc_errors > 0;
        t->desyncs += p->desyncs;
        t->stalls += p->stalls;
        t->stall_s += (double)p->stall_ns / NS;
        t->untracked_pids += p->untracked_pids;
        double prate = p->rate_bps;
        aggregate_bps += prate;
        if (p->slow) {
            slow_rates[ns++] = prate;
        } else {
            rates[nr++] = prate;
            if (target > 0 && prate < 0.95 * target)
                t->below_95++;
        }
    }
    int failed = ends[E_CONNECT] + ends[E_HTTP_STATUS] + ends[E_BAD_HEAD] + ends[E_CLOSED_BEFORE_BODY] +
                 ends[E_NO_RESPONSE] + ends[E_NO_BODY];

    double lag_sum = 0, lag_max = 0;
    long lag_ticks = 0;
    for (int i = 0; i < cfg.threads; i++) {
        lag_sum += workers[i].lag_sum_ms;
        lag_ticks += workers[i].lag_ticks;
        if (workers[i].lag_max_ms > lag_max)
            lag_max = workers[i].lag_max_ms;
    }

    printf("{");
    printf("\"config\":{\"host\":\"%s\",\"port\":%d,\"path\":\"%s\",\"players\":%d,\"ramp_per_s\":%.1f,"
           "\"rate_bps\":%.0f,\"duration_s\":%.1f,\"warmup_s\":%.1f,\"threads\":%d,\"slow_fraction\":%.4f,"
           "\"slow_rate_div\":%.2f,\"stall_ms\":%.0f,\"tick_ms\":%.1f,\"bucket_ms\":%.0f,\"rcvbuf\":%d},",
           cfg.host, cfg.port, cfg.path, cfg.players, cfg.ramp, cfg.rate_bps, cfg.duration, cfg.warmup,
           cfg.threads, cfg.slow_fraction, cfg.slow_rate_div, cfg.stall_s * 1e3, cfg.tick_s * 1e3,
           cfg.bucket_s * 1e3, cfg.rcvbuf);
    printf("\"window_s\":%.3f,", window_s);
    printf("\"players\":%d,\"normal_players\":%d,\"slow_players\":%d,", n, g[0].players, g[1].players);
    printf("\"streamed\":%d,\"failed_connections\":%d,", g[0].streamed + g[1].streamed, failed);
    printf("\"failures\":{\"connect\":%d,\"http_status\":%d,\"bad_head\":%d,\"closed_before_body\":%d,"
           "\"no_response\":%d,\"no_body\":%d},",
           ends[E_CONNECT], ends[E_HTTP_STATUS], ends[E_BAD_HEAD], ends[E_CLOSED_BEFORE_BODY], ends[E_NO_RESPONSE],
           ends[E_NO_BODY]);
    printf("\"disconnected_early\":{\"normal\":%d,\"slow\":%d,\"eof\":%d,\"reset\":%d},", g[0].disconnected_early,
           g[1].disconnected_early, ends[E_EOF], ends[E_RESET]);
    printf("\"chunked_responses\":%d,\"last_bad_status\":%d,", chunked, bad_status);
    printf("\"bytes_total\":%llu,", (unsigned long long)bytes);
    json_dist("ttfb_ms", ttfb, nt, 1.0);
    printf(",");
    printf("\"target_mbps\":%.3f,", target / 1e6);
    printf("\"below_95pct\":%d,", g[0].below_95);
    json_dist("rate_mbps", rates, nr, 1e-6);
    printf(",");
    json_dist("slow_rate_mbps", slow_rates, ns, 1e-6);
    printf(",");
    printf("\"aggregate_mbps\":%.3f,", aggregate_bps / 1e6);
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "slow" : "normal";
        printf("\"%s\":{\"cc_errors\":%llu,\"cc_error_players\":%llu,\"desyncs\":%llu,\"stalls\":%llu,"
               "\"stall_s\":%.3f,\"untracked_pids\":%llu},",
               name, (unsigned long long)g[k].cc_errors, (unsigned long long)g[k].cc_error_players,
               (unsigned long long)g[k].desyncs, (unsigned long long)g[k].stalls, g[k].stall_s,
               (unsigned long long)g[k].untracked_pids);
    }
    printf("\"cc_errors\":{\"normal\":%llu,\"slow\":%llu},", (unsigned long long)g[0].cc_errors,
           (unsigned long long)g[1].cc_errors);
    printf("\"desyncs\":%llu,\"stalls\":%llu,", (unsigned long long)(g[0].desyncs + g[1].desyncs),
           (unsigned long long)(g[0].stalls + g[1].stalls));
    printf("\"loadgen\":{\"cpu_pct\":%.1f,\"user_pct\":%.1f,\"sys_pct\":%.1f,\"threads\":%d,"
           "\"cpu_pct_per_thread\":%.1f,",
           cpu_pct, user_pct, sys_pct, cfg.threads, cpu_pct / cfg.threads);
    json_num("tick_lag_mean_ms", lag_ticks ? lag_sum / lag_ticks : NAN, true);
    json_num("tick_lag_max_ms", lag_max, true);
    /* Saturated: its threads were busy nearly all the time, or it ran its ticks late. */
    bool saturated = cpu_pct / cfg.threads > 90 || (lag_ticks && lag_sum / lag_ticks > cfg.tick_s * 1e3);
    printf("\"saturated\":%s}", saturated ? "true" : "false");
    if (cfg.per_player_rates) {
        printf(",\"rates_mbps\":[");
        for (int i = 0, first = 1; i < n; i++) {
            if (all_players[i].slow)
                continue;
            printf("%s%.3f", first ? "" : ",", all_players[i].rate_bps / 1e6);
            first = 0;
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
    free(ttfb);
    free(rates);
    free(slow_rates);
}

/* ---- setup ---------------------------------------------------------------- */

/* User and system CPU seconds of the whole process. */
static void cpu_seconds(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void sleep_until(int64_t t)
{
    while (!interrupted) {
        int64_t d = t - now_ns();
        if (d <= 0)
            return;
        struct timespec ts = {.tv_sec = d / NS, .tv_nsec = d % NS};
        nanosleep(&ts, NULL);
    }
}

/* Parses "8M", "800k", "2500000": a positive number with an optional SI suffix. */
static double parse_si(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1e3; end++; break;
    case 'm': case 'M': v *= 1e6; end++; break;
    case 'g': case 'G': v *= 1e9; end++; break;
    default: break;
    }
    if (*end != '\0' || v < 0 || isnan(v)) {
        fprintf(stderr, "loadgen: %s: expected a non-negative number (suffix k/M/G allowed), got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

/* Accepts http://host:port/path. */
static void parse_url(const char *url)
{
    const char *s = url;
    if (strncmp(s, "http://", 7) != 0) {
        fprintf(stderr, "loadgen: --url must start with http://, got '%s'\n", url);
        exit(2);
    }
    s += 7;
    const char *slash = strchr(s, '/');
    const char *colon = memchr(s, ':', slash ? (size_t)(slash - s) : strlen(s));
    const char *hend = colon ? colon : (slash ? slash : s + strlen(s));
    snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(hend - s), s);
    cfg.port = colon ? atoi(colon + 1) : 80;
    snprintf(cfg.path, sizeof cfg.path, "%s", slash ? slash : "/");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen (--url http://HOST:PORT/PATH | -p PORT [--host H] [-u PATH]) [options]\n"
            "  -n, --players N        connections to open (default 100)\n"
            "  -R, --ramp N           new connections per second (default 500)\n"
            "  -b, --rate BPS         read rate per player in bits/s, k/M/G suffix ok; 0 = unlimited (default 8M)\n"
            "  -d, --duration S       whole run, including ramp and warm-up (default 20)\n"
            "  -w, --warmup S         settle time after the last player joined, before measuring (default 3)\n"
            "  -t, --threads N        worker threads, players split among them (default 1)\n"
            "      --slow-fraction F  fraction of players that read slowly (default 0)\n"
            "      --slow-rate-div D  slow players read at rate/D (default 10)\n"
            "      --stall-ms MS      no byte for this long while wanting data = a stall (default 1000)\n"
            "      --tick-ms MS       bucket refill tick (default 20)\n"
            "      --bucket-ms MS     bucket depth in time at the player's rate (default max(200, 5 ticks))\n"
            "      --rcvbuf BYTES     SO_RCVBUF per connection (default: kernel autotuning)\n"
            "      --no-rates         leave the per-player rate list out of the JSON\n"
            "Prints one JSON object on stdout; progress on stderr.\n");
}

static void parse_args(int argc, char **argv)
{
    enum { O_SLOW_FRACTION = 256, O_SLOW_DIV, O_STALL, O_TICK, O_BUCKET, O_RCVBUF, O_NO_RATES, O_HOST, O_URL };
    static const struct option opts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"url", required_argument, NULL, O_URL},
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'u'},
        {"players", required_argument, NULL, 'n'},
        {"ramp", required_argument, NULL, 'R'},
        {"rate", required_argument, NULL, 'b'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"slow-fraction", required_argument, NULL, O_SLOW_FRACTION},
        {"slow-rate-div", required_argument, NULL, O_SLOW_DIV},
        {"stall-ms", required_argument, NULL, O_STALL},
        {"tick-ms", required_argument, NULL, O_TICK},
        {"bucket-ms", required_argument, NULL, O_BUCKET},
        {"rcvbuf", required_argument, NULL, O_RCVBUF},
        {"no-rates", no_argument, NULL, O_NO_RATES},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "p:u:n:R:b:d:w:t:h", opts, NULL)) != -1) {
        switch (c) {
        case O_HOST: snprintf(cfg.host, sizeof cfg.host, "%s", optarg); break;
        case O_URL: parse_url(optarg); break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'u': snprintf(cfg.path, sizeof cfg.path, "%s", optarg); break;
        case 'n': cfg.players = (int)parse_si(optarg, "--players"); break;
        case 'R': cfg.ramp = parse_si(optarg, "--ramp"); break;
        case 'b': cfg.rate_bps = parse_si(optarg, "--rate"); break;
        case 'd': cfg.duration = parse_si(optarg, "--duration"); break;
        case 'w': cfg.warmup = parse_si(optarg, "--warmup"); break;
        case 't': cfg.threads = atoi(optarg); break;
        case O_SLOW_FRACTION: cfg.slow_fraction = parse_si(optarg, "--slow-fraction"); break;
        case O_SLOW_DIV: cfg.slow_rate_div = parse_si(optarg, "--slow-rate-div"); break;
        case O_STALL: cfg.stall_s = parse_si(optarg, "--stall-ms") / 1e3; break;
        case O_TICK: cfg.tick_s = parse_si(optarg, "--tick-ms") / 1e3; break;
        case O_BUCKET: cfg.bucket_s = parse_si(optarg, "--bucket-ms") / 1e3; break;
        case O_RCVBUF: cfg.rcvbuf = atoi(optarg); break;
        case O_NO_RATES: cfg.per_player_rates = false; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc || cfg.port <= 0 || cfg.port > 65535) {
        fprintf(stderr, "loadgen: give the server as --url http://HOST:PORT/PATH or -p PORT\n");
        usage(stderr);
        exit(2);
    }
    if (cfg.players < 1 || cfg.ramp <= 0 || cfg.threads < 1 || cfg.threads > 64 || cfg.tick_s <= 0 ||
        cfg.slow_fraction > 1 || cfg.slow_rate_div < 1) {
        fprintf(stderr, "loadgen: need players >= 1, ramp > 0, 1 <= threads <= 64, tick > 0, "
                        "slow-fraction <= 1, slow-rate-div >= 1\n");
        exit(2);
    }
    if (cfg.bucket_s <= 0)
        cfg.bucket_s = cfg.tick_s * 5 > 0.2 ? cfg.tick_s * 5 : 0.2;
    double ramp_s = (cfg.players - 1) / cfg.ramp;
    if (ramp_s + cfg.warmup + 1.0 > cfg.duration) {
        fprintf(stderr,
                "loadgen: --duration %.1f s leaves under 1 s to measure after the ramp (%.1f s) and warm-up "
                "(%.1f s); raise --duration or --ramp\n",
                cfg.duration, ramp_s, cfg.warmup);
        exit(2);
    }
}

/* Each connection is an fd: make room for all of them, raising the hard limit too if we may. */
static void raise_nofile(int need)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= (rlim_t)need)
        return;
    if (rl.rlim_max < (rlim_t)need) {
        struct rlimit hard = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)need)
        fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE is %llu, %d players need %d\n",
                (unsigned long long)rl.rlim_cur, cfg.players, need);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    raise_nofile(cfg.players + 64);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(cfg.host, NULL, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s: %s\n", cfg.host, gai_strerror(rc));
        return 2;
    }
    server_addr = *(struct sockaddr_in *)ai->ai_addr;
    server_addr.sin_port = htons((uint16_t)cfg.port);
    freeaddrinfo(ai);

    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: acerelay-loadgen/1\r\n"
                                   "Accept: */*\r\nConnection: close\r\n\r\n",
                                   cfg.path, cfg.host, cfg.port);

    all_players = calloc((size_t)cfg.players, sizeof *all_players);
    struct worker *workers = calloc((size_t)cfg.threads, sizeof *workers);
    if (all_players == NULL || workers == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    double normal_bytes = cfg.rate_bps / 8;
    for (int i = 0; i < cfg.players; i++) {
        struct player *p = &all_players[i];
        p->fd = -1;
        p->index = i;
        p->synced = true; /* the body must start on a packet boundary */
        /* Spread slow players evenly through the ramp rather than bunching them. */
        p->slow = floor((i + 1) * cfg.slow_fraction) > floor(i * cfg.slow_fraction);
        p->rate = p->slow ? normal_bytes / cfg.slow_rate_div : normal_bytes;
        p->bucket = p->rate * cfg.bucket_s;
        if (p->bucket < 2 * cfg.min_read)
            p->bucket = 2 * cfg.min_read;
        p->tokens = p->bucket;
    }
    for (int k = 0; k < cfg.threads; k++) {
        struct worker *w = &workers[k];
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->players = calloc((size_t)cfg.players / (size_t)cfg.threads + 1, sizeof *w->players);
        if (w->epfd < 0 || w->players == NULL) {
            perror("loadgen: worker setup");
            return 1;
        }
    }
    for (int i = 0; i < cfg.players; i++) {
        struct worker *w = &workers[i % cfg.threads];
        w->players[w->count++] = &all_players[i];
    }

    t_origin = now_ns();
    double ramp_s = (cfg.players - 1) / cfg.ramp;
    t_window_start = t_origin + (int64_t)((ramp_s + cfg.warmup) * NS);
    t_run_end = t_origin + (int64_t)(cfg.duration * NS);
    fprintf(stderr, "loadgen: %d players -> %s:%d%s, ramp %.1f s, measuring from +%.1f s to +%.1f s\n", cfg.players,
            cfg.host, cfg.port, cfg.path, ramp_s, ramp_s + cfg.warmup, cfg.duration);

    for (int k = 0; k < cfg.threads; k++) {
        if (pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]) != 0) {
            perror("loadgen: pthread_create");
            return 1;
        }
    }

    sleep_until(t_window_start);
    double user0, sys0, user1, sys1;
    cpu_seconds(&user0, &sys0);
    int64_t w0 = now_ns();
    fprintf(stderr, "loadgen: window-start\n");
    sleep_until(t_run_end);
    cpu_seconds(&user1, &sys1);
    int64_t w1 = now_ns();
    fprintf(stderr, "loadgen: window-end\n");
    for (int k = 0; k < cfg.threads; k++)
        pthread_join(workers[k].thread, NULL);

    double window_s = (double)(w1 - w0) / NS;
    double user_pct = window_s > 0 ? (user1 - user0) / window_s * 100 : 0;
    double sys_pct = window_s > 0 ? (sys1 - sys0) / window_s * 100 : 0;
    report(workers, user_pct, sys_pct, window_s);
    if (interrupted)
        fprintf(stderr, "loadgen: interrupted; results cover the run so far\n");
    return 0;
}
