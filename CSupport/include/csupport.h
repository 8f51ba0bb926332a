// CSupport: one-line forwarders for what Swift cannot call directly.
//
// - libev's watcher set-up is macros (ev_io_init, ev_timer_init, ev_async_init,
//   ev_is_active); Swift imports no macros with arguments.
// - libcurl's curl_easy_setopt / curl_multi_setopt / curl_easy_getinfo are
//   variadic; Swift cannot call C variadics, so each argument type gets a typed
//   forwarder.
// - memfd_create, fallocate, accept4 and pthread_setname_np are declared only
//   under _GNU_SOURCE. Defining it here would change glibc's own types (fd_set)
//   against Swift's Glibc module, so those forwarders live in csupport.c, which
//   is compiled with it, and only their prototypes are here.
//
// No state and no logic belong here: everything else is Swift.
#ifndef CSUPPORT_H
#define CSUPPORT_H

#include <ev.h>
#include <curl/curl.h>
#include <sys/types.h>

// MARK: libev

typedef void (*csupport_ev_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*csupport_ev_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*csupport_ev_async_cb)(struct ev_loop *loop, ev_async *w, int revents);

static inline void csupport_ev_io_init(ev_io *w, csupport_ev_io_cb cb, int fd, int events) {
    ev_io_init(w, cb, fd, events);
}
static inline void csupport_ev_io_set(ev_io *w, int fd, int events) { ev_io_set(w, fd, events); }
static inline void csupport_ev_timer_init(ev_timer *w, csupport_ev_timer_cb cb, double after, double repeat) {
    ev_timer_init(w, cb, after, repeat);
}
static inline void csupport_ev_timer_set(ev_timer *w, double after, double repeat) {
    ev_timer_set(w, after, repeat);
}
static inline void csupport_ev_async_init(ev_async *w, csupport_ev_async_cb cb) { ev_async_init(w, cb); }
static inline int csupport_ev_is_active(const void *w) { return ev_is_active((const ev_watcher *)w); }
static inline void *csupport_ev_data(const void *w) { return ((const ev_watcher *)w)->data; }
static inline void csupport_ev_set_data(void *w, void *data) { ((ev_watcher *)w)->data = data; }

// MARK: libcurl (typed forwarders for the variadic setopt/getinfo)

typedef size_t (*csupport_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*csupport_curl_socket_cb)(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*csupport_curl_timer_cb)(CURLM *multi, long timeout_ms, void *userp);

static inline CURLcode csupport_curl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode csupport_curl_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode csupport_curl_easy_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode csupport_curl_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode csupport_curl_easy_setopt_data_cb(CURL *h, CURLoption o, csupport_curl_data_cb v) { return curl_easy_setopt(h, o, v); }
static inline CURLMcode csupport_curl_multi_setopt_pointer(CURLM *m, CURLMoption o, void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode csupport_curl_multi_setopt_socket_cb(CURLM *m, csupport_curl_socket_cb v) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, v); }
static inline CURLMcode csupport_curl_multi_setopt_timer_cb(CURLM *m, csupport_curl_timer_cb v) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, v); }
static inline CURLcode csupport_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }

// MARK: _GNU_SOURCE syscalls (implemented in csupport.c)

/// memfd_create(name, MFD_CLOEXEC).
int csupport_memfd_create(const char *name);
/// Gives pages of [offset, offset+length) back to the system; the file size stays.
int csupport_punch_hole(int fd, off_t offset, off_t length);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, peer address not returned.
int csupport_accept4_nonblock(int fd);
/// Names the calling thread (15 characters at most) for top and gdb.
int csupport_set_thread_name(const char *name);
/// mallopt(M_ARENA_MAX, arenas): 1 on success (glibc), 0 when refused.
int csupport_limit_malloc_arenas(int arenas);
/// malloc_trim(0): free pages of every arena back to the system; 1 when any was released.
int csupport_malloc_trim(void);
/// Bytes malloc has handed out and not had back, over every arena and mmap (mallinfo2).
size_t csupport_heap_in_use(void);

#endif
