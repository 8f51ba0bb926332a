// The _GNU_SOURCE-only forwarders. The libev and libcurl forwarders are
// static inline in include/csupport.h.
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csupport.h"

int csupport_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int csupport_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

int csupport_accept4_nonblock(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int csupport_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int csupport_limit_malloc_arenas(int arenas) { return mallopt(M_ARENA_MAX, arenas); }

int csupport_malloc_trim(void) { return malloc_trim(0); }

size_t csupport_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
