/* See wire.h. Why each check exists is told in libleeward/paths.py and client.py;
 * this is the same rule, kept in step by tests/cli (a directory or a peer they refuse
 * is refused here too). */
#define _GNU_SOURCE
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_RETRY_NS 3000000000LL /* a burst fills the listen queue: EAGAIN, retried */

void lw_default_socket(char *out, size_t size)
{
    const char *explicit = secure_getenv("LEEWARD_SOCKET");
    const char *runtime = secure_getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (explicit && *explicit)
        snprintf(out, size, "%s", explicit);
    else if (geteuid() == 0)
        snprintf(out, size, "/run/leeward/leeward.sock");
    else if (runtime && *runtime && stat(runtime, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, size, "%s/leeward.sock", runtime);
    else
        snprintf(out, size, "/tmp/leeward-%u/leeward.sock", (unsigned)geteuid());
}

/* paths.must_be_private: the per-user fallback, or a directory whose parent others
 * may write to (so they could have made it first). */
static int must_be_private(const char *directory)
{
    char fallback[64], parent[4096];
    struct stat st;
    char *slash;
    snprintf(fallback, sizeof fallback, "/tmp/leeward-%u", (unsigned)geteuid());
    if (strcmp(directory, fallback) == 0)
        return 1;
    snprintf(parent, sizeof parent, "%s", directory);
    slash = strrchr(parent, '/');
    if (slash == NULL)
        return 0;
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(parent, &st) != 0)
        return 0;
    return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

/* paths.check_client_directory: an existing private-by-location directory must be a
 * real directory of ours or root's, mode 0700-ish; checked on an O_NOFOLLOW fd. */
static int check_directory(const char *socket_path, char *why, size_t why_size)
{
    char directory[4096];
    char *slash;
    struct stat st;
    int fd;
    if (socket_path[0] != '/') {
        if (getcwd(directory, sizeof directory) == NULL)
            return -1;
        size_t used = strlen(directory);
        snprintf(directory + used, sizeof directory - used, "/%s", socket_path);
    } else {
        snprintf(directory, sizeof directory, "%s", socket_path);
    }
    slash = strrchr(directory, '/');
    if (slash == directory)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (!must_be_private(directory) || lstat(directory, &st) != 0)
        return 0;
    fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_size, "socket directory %s: %s; refusing to use it", directory, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 077)) {
        snprintf(why, why_size, "socket directory %s is not yours or root's with mode 0700; refusing to use it",
                 directory);
        errno = EPERM;
        return -1;
    }
    return 0;
}

static int connect_retrying(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timespec start, now, delay = {0, 5000000};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        int saved = errno;
        close(fd);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (saved != EAGAIN || (now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec)
                                   > CONNECT_RETRY_NS) {
            errno = saved;
            return -1;
        }
        nanosleep(&delay, NULL);
        if (delay.tv_nsec < 100000000)
            delay.tv_nsec *= 2;
    }
}

int lw_connect(const char *path, char *why, size_t why_size)
{
    struct ucred peer;
    socklen_t len = sizeof peer;
    int fd;
    why[0] = '\0';
    if (check_directory(path, why, why_size) != 0)
        return -1;
    fd = connect_retrying(path);
    if (fd < 0) {
        snprintf(why, why_size, "cannot connect to %s: %s", path, strerror(errno));
        return -1;
    }
    /* Whoever called listen() reads every job: it must be us or root (SO_PEERCRED
     * cannot be changed by a later chmod, rename or fd passing). */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0
        || (peer.uid != geteuid() && peer.uid != 0)) {
        snprintf(why, why_size, "socket %s is served by a uid that is neither you nor root", path);
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int lw_send_frame(int fd, const uint8_t *body, size_t len)
{
    uint8_t header[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    struct iovec parts[2] = {{header, 4}, {(void *)body, len}};
    struct msghdr msg = {.msg_iov = parts, .msg_iovlen = 2};
    size_t left = 4 + len;
    while (left) {
        /* MSG_NOSIGNAL: a daemon that dies mid-request is an error here, not our death. */
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        left -= (size_t)sent;
        while (sent > 0) {
            size_t step = (size_t)sent < msg.msg_iov->iov_len ? (size_t)sent : msg.msg_iov->iov_len;
            msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + step;
            msg.msg_iov->iov_len -= step;
            sent -= (ssize_t)step;
            if (msg.msg_iov->iov_len == 0 && msg.msg_iovlen > 1) {
                msg.msg_iov++;
                msg.msg_iovlen--;
            }
        }
    }
    return 0;
}

/* Reads exactly n bytes. */
static int recv_exact(int fd, uint8_t *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, out + got, n - got, 0);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int lw_recv_frame(int fd, uint8_t **body, size_t *len)
{
    uint8_t header[4];
    uint32_t size;
    *body = NULL;
    if (recv_exact(fd, header, 4) != 0)
        return -1;
    size = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (size == 0 || size > LW_MAX_REPLY_FRAME) {
        errno = EPROTO;
        return -1;
    }
    *body = malloc(size);
    if (*body == NULL)
        return -1;
    if (recv_exact(fd, *body, size) != 0) {
        free(*body);
        *body = NULL;
        return -1;
    }
    *len = size;
    return 0;
}
