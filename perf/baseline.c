/*
 * baseline — the simplest sendfile-from-memfd MPEG-TS fan-out.
 *
 * Reads a transport stream on stdin, appends whole 188-byte packets to one
 * memfd at an offset that only grows, and serves every HTTP GET on its port
 * from that memfd with sendfile, each client at its own offset. This is the
 * work acerelay's data plane does in its plainest form (one thread, one
 * stream, no engine logic), so the benchmark reports acerelay's cost as a
 * ratio to this program's.
 *
 *   curl -sN http://127.0.0.1:6878/ace/r/... | baseline -p 8090
 *
 * Rules it shares with acerelay (see shared/ARCHITECTURE.md, "Ring"):
 * - Never write into a page that was handed to sendfile: the kernel keeps
 *   referencing those pages after sendfile returns (sender's queue, and on
 *   loopback the receiver's unread queue). Appending only past the end is safe.
 * - Give memory back with FALLOC_FL_PUNCH_HOLE on whole pages only: punching a
 *   partial page zeroes it in place, which would corrupt queued data.
 * - Batch: a client is written when >= 16 KiB is pending or 20 ms passed, each
 *   call capped, retried until EAGAIN. Small sends cost several times the CPU.
 * - A client that falls behind the kept history skips forward (counted); it
 *   never slows anyone else.
 *
 * On SIGINT/SIGTERM (or EOF on stdin) it prints its counters as JSON on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TS_PACKET 188
#define TS_SYNC 0x47
#define IN_BUF (256 * 1024)
#define REQ_MAX 2048
#define MAX_EVENTS 1024
#define TICK_MS 20
/* Rate samples every 100 ms over 3 s: enough to place a join ~1 s behind live. */
#define RATE_SLOTS 31
#define RATE_EVERY_TICKS 5

/* epoll tags for the fds that are not clients (client tags are pointers). */
#define TAG_LISTEN 1
#define TAG_STDIN 2
#define TAG_TIMER 3

static const char RESPONSE_HEAD[] = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n";

struct config {
    const char *listen_addr;
    int port;
    uint64_t history_bytes;  /* bytes kept behind live for joins and slow readers */
    double join_s;           /* a new client starts this far behind live */
    uint64_t default_rate;   /* bytes/s assumed until the input rate is measured */
    size_t batch_bytes;      /* send to live clients once this much is pending */
    size_t max_per_call;     /* cap per sendfile call */
};

static struct config cfg = {
    .listen_addr = "127.0.0.1",
    .port = 0,
    .history_bytes = 64ull << 20,
    .join_s = 1.0,
    .default_rate = 1000000,
    .batch_bytes = 16 * 1024,
    .max_per_call = 256 * 1024,
};

enum cstate { C_REQUEST, C_STREAM };

struct client {
    int fd;
    int slot;              /* index in clients[] */
    uint8_t state;         /* enum cstate */
    bool blocked;          /* sendfile hit EAGAIN; waiting for EPOLLOUT */
    uint16_t req_len;
    off_t off;             /* next memfd byte to send to this client */
    struct client *next_dead; /* closed in this epoll batch; freed after it */
    char req[REQ_MAX];
};

/* The one stream: its history file, the append point and what was given back. */
static int memfd = -1;
static uint64_t live;        /* bytes appended so far: the live edge */
static uint64_t punched;     /* everything below this (page-aligned) is a hole */
static uint64_t flushed_at;  /* live edge at the last fan-out */
static bool pending_tick;    /* data arrived since the last fan-out */

static uint8_t inbuf[IN_BUF];
static size_t inlen;
static bool in_sync;

static uint64_t rate_ring[RATE_SLOTS];
static int rate_pos, rate_filled, tick_count;

static struct client **clients;
static int nclients, clients_cap;
/* A fan-out can close a client whose event is still ahead in the same epoll batch. */
static struct client *dead;
static int epfd;

static struct {
    uint64_t accepted, closed, peak, skips, resyncs, sendfile_calls, bytes_out, bad_requests;
} stats;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- history -------------------------------------------------------------- */

static uint64_t packet_floor(uint64_t v) { return v - v % TS_PACKET; }
static uint64_t packet_ceil(uint64_t v) { return packet_floor(v + TS_PACKET - 1); }

/* Oldest offset a client may still read: the first packet boundary above the holes. */
static uint64_t oldest_readable(void) { return packet_ceil(punched); }

static uint64_t input_rate(void)
{
    if (rate_filled < RATE_SLOTS)
        return cfg.default_rate;
    uint64_t newest = rate_ring[(rate_pos + RATE_SLOTS - 1) % RATE_SLOTS];
    uint64_t oldest = rate_ring[rate_pos];
    return (newest - oldest) * 10 / (RATE_SLOTS - 1);
}

static uint64_t join_offset(void)
{
    uint64_t back = (uint64_t)(cfg.join_s * (double)input_rate());
    uint64_t off = live > back ? packet_floor(live - back) : 0;
    uint64_t floor = oldest_readable();
    return off < floor ? floor : off;
}

static void append_packets(const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = pwrite(memfd, p, n, (off_t)live);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("pwrite to memfd");
        }
        p += w;
        n -= (size_t)w;
        live += (uint64_t)w;
    }
    if (live > cfg.history_bytes) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t upto = (live - cfg.history_bytes) / page * page;
        if (upto > punched) {
            if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)punched,
                          (off_t)(upto - punched)) < 0)
                die("fallocate(PUNCH_HOLE)");
            punched = upto;
        }
    }
}

/*
 * Keep whole packets only: lock on three sync bytes at 188-byte spacing, pass
 * runs of packets through, drop bytes until the next lock after a loss.
 */
static void ingest(void)
{
    size_t i = 0;
    while (inlen - i >= TS_PACKET) {
        if (!in_sync) {
            if (inlen - i < 3 * TS_PACKET)
                break;
            if (inbuf[i] == TS_SYNC && inbuf[i + TS_PACKET] == TS_SYNC && inbuf[i + 2 * TS_PACKET] == TS_SYNC)
                in_sync = true;
            else
                i++;
            continue;
        }
        size_t run = i;
        while (inlen - run >= TS_PACKET && inbuf[run] == TS_SYNC)
            run += TS_PACKET;
        if (run > i)
            append_packets(inbuf + i, run - i);
        i = run;
        if (inlen - i >= TS_PACKET) {
            in_sync = false;
            stats.resyncs++;
        }
    }
    memmove(inbuf, inbuf + i, inlen - i);
    inlen -= i;
}

/* ---- clients -------------------------------------------------------------- */

static void client_close(struct client *c)
{
    close(c->fd);
    c->fd = -1;
    struct client *last = clients[--nclients];
    clients[c->slot] = last;
    last->slot = c->slot;
    c->next_dead = dead;
    dead = c;
    stats.closed++;
}

static void free_dead(void)
{
    while (dead != NULL) {
        struct client *c = dead;
        dead = c->next_dead;
        free(c);
    }
}

/* Send what the client is missing until it is caught up or its socket is full. Returns false if closed. */
static bool client_send(struct client *c)
{
    for (;;) {
        uint64_t floor = oldest_readable();
        if ((uint64_t)c->off < floor) {
            c->off = (off_t)join_offset();
            stats.skips++;
        }
        uint64_t pending = live - (uint64_t)c->off;
        if (pending == 0)
            return true;
        size_t n = pending < cfg.max_per_call ? (size_t)pending : cfg.max_per_call;
        ssize_t w = sendfile(c->fd, memfd, &c->off, n);
        stats.sendfile_calls++;
        if (w > 0) {
            stats.bytes_out += (uint64_t)w;
            /* A short write means the socket buffer is full; the EPOLLOUT edge says when it is not. */
            if ((size_t)w < n) {
                c->blocked = true;
                return true;
            }
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            c->blocked = true;
            return true;
        }
        client_close(c);
        return false;
    }
}

static void fan_out(void)
{
    /* Iterate backwards: client_close swaps the last client into the freed slot. */
    for (int i = nclients - 1; i >= 0; i--) {
        struct client *c = clients[i];
        if (c->state == C_STREAM && !c->blocked)
            client_send(c);
    }
    flushed_at = live;
    pending_tick = false;
}

static void client_request(struct client *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->req + c->req_len, REQ_MAX - 1 - c->req_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            client_close(c);
            return;
        }
        c->req_len = (uint16_t)(c->req_len + n);
        c->req[c->req_len] = '\0';
        if (strstr(c->req, "\r\n\r\n") != NULL)
            break;
        if (c->req_len >= REQ_MAX - 1) {
            stats.bad_requests++;
            client_close(c);
            return;
        }
    }
    bool head_only = strncmp(c->req, "HEAD ", 5) == 0;
    if (!head_only && strncmp(c->req, "GET ", 4) != 0) {
        static const char bad[] = "HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        (void)!send(c->fd, bad, sizeof bad - 1, MSG_NOSIGNAL);
        stats.bad_requests++;
        client_close(c);
        return;
    }
    /* A fresh socket's send buffer takes the head whole. */
    if (send(c->fd, RESPONSE_HEAD, sizeof RESPONSE_HEAD - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof RESPONSE_HEAD - 1) ||
        head_only) {
        client_close(c);
        return;
    }
    c->state = C_STREAM;
    c->off = (off_t)join_offset();
    client_send(c);
}

static void on_client(struct client *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        client_close(c);
        return;
    }
    if (c->state == C_REQUEST) {
        if (events & EPOLLIN)
            client_request(c);
        return;
    }
    if (events & EPOLLIN) {
        /* Players have nothing more to say; drain whatever they send. */
        char sink[512];
        ssize_t n;
        while ((n = read(c->fd, sink, sizeof sink)) > 0)
            ;
        if (n == 0) {
            client_close(c);
            return;
        }
    }
    if (events & EPOLLOUT) {
        c->blocked = false;
        client_send(c);
    }
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                fprintf(stderr, "baseline: accept: %s\n", strerror(errno));
            return;
        }
        struct client *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        if (nclients == clients_cap) {
            int cap = clients_cap ? clients_cap * 2 : 1024;
            struct client **grown = realloc(clients, (size_t)cap * sizeof *clients);
            if (grown == NULL) {
                close(fd);
                free(c);
                continue;
            }
            clients = grown;
            clients_cap = cap;
        }
        c->fd = fd;
        c->slot = nclients;
        clients[nclients++] = c;
        stats.accepted++;
        if ((uint64_t)nclients > stats.peak)
            stats.peak = (uint64_t)nclients;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            client_close(c);
            continue;
        }
    }
}

/* ---- input and timer ------------------------------------------------------ */

/* Returns false at end of input. */
static bool on_stdin(void)
{
    for (;;) {
        ssize_t n = read(STDIN_FILENO, inbuf + inlen, sizeof inbuf - inlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0)
            die("read stdin");
        if (n == 0)
            return false;
        inlen += (size_t)n;
        ingest();
    }
    if (live - flushed_at >= cfg.batch_bytes)
        fan_out();
    else if (live > flushed_at)
        pending_tick = true;
    return true;
}

static void on_timer(int tfd)
{
    uint64_t expirations;
    (void)!read(tfd, &expirations, sizeof expirations);
    if (pending_tick)
        fan_out();
    if (++tick_count % RATE_EVERY_TICKS == 0) {
        rate_ring[rate_pos] = live;
        rate_pos = (rate_pos + 1) % RATE_SLOTS;
        if (rate_filled < RATE_SLOTS)
            rate_filled++;
    }
}

static void print_stats(void)
{
    fprintf(stderr,
            "{\"baseline\":{\"bytes_in\":%llu,\"bytes_out\":%llu,\"clients_accepted\":%llu,\"clients_closed\":%llu,"
            "\"clients_peak\":%llu,\"skips\":%llu,\"resyncs\":%llu,\"sendfile_calls\":%llu,\"bad_requests\":%llu,"
            "\"input_rate_bps\":%llu}}\n",
            (unsigned long long)live, (unsigned long long)stats.bytes_out, (unsigned long long)stats.accepted,
            (unsigned long long)stats.closed, (unsigned long long)stats.peak, (unsigned long long)stats.skips,
            (unsigned long long)stats.resyncs, (unsigned long long)stats.sendfile_calls,
            (unsigned long long)stats.bad_requests, (unsigned long long)input_rate() * 8);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: baseline -p PORT [-l ADDR] [-m HISTORY_MIB] [-j JOIN_SECONDS] [-B BATCH_BYTES]\n"
               "  reads MPEG-TS on stdin and serves it to every GET on ADDR:PORT (default 127.0.0.1)\n"
               "  -m  history kept behind live, MiB (default 64)\n"
               "  -j  new clients start this many seconds behind live (default 1.0)\n"
               "  -B  fan out once this many bytes are pending (default 16384; else every 20 ms)\n");
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "p:l:m:j:B:h")) != -1) {
        switch (c) {
        case 'p': cfg.port = atoi(optarg); break;
        case 'l': cfg.listen_addr = optarg; break;
        case 'm': cfg.history_bytes = strtoull(optarg, NULL, 10) << 20; break;
        case 'j': cfg.join_s = atof(optarg); break;
        case 'B': cfg.batch_bytes = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cfg.port <= 0 || cfg.port > 65535 || cfg.history_bytes < (4u << 20) || cfg.join_s < 0) {
        fprintf(stderr, "baseline: need -p PORT (1-65535), -m >= 4 MiB, -j >= 0\n");
        usage(stderr);
        return 2;
    }

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    memfd = memfd_create("baseline-history", MFD_CLOEXEC);
    if (memfd < 0)
        die("memfd_create");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    if (inet_pton(AF_INET, cfg.listen_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "baseline: -l wants an IPv4 address, got '%s'\n", cfg.listen_addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");

    int flags = fcntl(STDIN_FILENO, F_GETFL);
    fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK);

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, TICK_MS * 1000000L}, .it_value = {0, TICK_MS * 1000000L}};
    timerfd_settime(tfd, 0, &its, NULL);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_TIMER};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_STDIN};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
        die("epoll on stdin (stdin must be a pipe or socket)");

    fprintf(stderr, "baseline: serving stdin on http://%s:%d/\n", cfg.listen_addr, cfg.port);
    struct epoll_event events[MAX_EVENTS];
    bool input_open = true;
    while (!stopping && input_open) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_LISTEN)
                on_accept(lfd);
            else if (tag == TAG_STDIN)
                input_open = on_stdin();
            else if (tag == TAG_TIMER)
                on_timer(tfd);
            else
                on_client(events[i].data.ptr, events[i].events);
            if (!input_open)
                break;
        }
        free_dead();
    }
    if (!input_open)
        fprintf(stderr, "baseline: end of input\n");
    print_stats();
    return 0;
}
