// C library headers that Swift's Glibc module does not export.
#if defined(__linux__)
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Swaps two paths atomically (renameat2 with RENAME_EXCHANGE, Linux 3.15+): both must exist. Returns 0, or -1
/// with errno set (EINVAL or ENOSYS where the file system or kernel cannot exchange). Called through syscall(2)
/// because glibc declares renameat2 only under _GNU_SOURCE, which Swift's Glibc module is not built with.
static inline int halo_exchange_paths(const char *first, const char *second) {
#if defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, first, AT_FDCWD, second, 2u /* RENAME_EXCHANGE */);
#else
    errno = ENOSYS;
    return -1;
#endif
}
#endif
