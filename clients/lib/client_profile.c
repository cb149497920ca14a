/* client_profile.c: the profile directory (see client_profile.h). */
#include "client_profile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "keyfile.h"

#define PROFILE_MAX_BYTES 16384

int client_profile_path(const char *dir, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? ERR_TOO_BIG : 0;
}

int client_profile_mkdir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ERR_IO;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ERR_IO;
    /* Writable by others: they could have planted or swapped files. */
    if (st.st_mode & 022)
        return ERR_DENIED;
    if (st.st_uid != geteuid())
        return ERR_DENIED;
    /* Readable by others (e.g. made by hand with the umask's 0755): the
     * profile is private, tighten it. */
    if ((st.st_mode & 0777) != 0700 && chmod(dir, 0700) != 0)
        return ERR_IO;
    return 0;
}

static int copy_field(json_t *root, const char *key, char *dst, size_t cap, int required)
{
    json_t *v = json_object_get(root, key);
    const char *s;

    if (!v) {
        dst[0] = '\0';
        return required ? ERR_MALFORMED : 0;
    }
    if (!json_is_string(v))
        return ERR_MALFORMED;
    s = json_string_value(v);
    if (strlen(s) >= cap)
        return ERR_TOO_BIG;
    strcpy(dst, s);
    return 0;
}

int client_profile_parse(const char *buf, size_t len, struct client_profile *p)
{
    json_t *root = NULL, *v;
    json_error_t jerr;
    int rc;

    memset(p, 0, sizeof(*p));
    if (len > PROFILE_MAX_BYTES)
        return ERR_TOO_BIG;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != CLIENT_PROFILE_VERSION) {
        rc = ERR_MALFORMED;
        goto out;
    }
    if ((rc = copy_field(root, "server", p->server, sizeof(p->server), 0)) != 0 ||
        (rc = copy_field(root, "id", p->id, sizeof(p->id), 0)) != 0 ||
        (rc = copy_field(root, "device", p->device, sizeof(p->device), 0)) != 0 ||
        (rc = copy_field(root, "domain", p->domain, sizeof(p->domain), 0)) != 0 ||
        (rc = copy_field(root, "role", p->role, sizeof(p->role), 0)) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(p, 0, sizeof(*p));
    json_decref(root);
    return rc;
}

int client_profile_load(const char *dir, struct client_profile *p)
{
    char path[PATH_MAX], *buf = NULL;
    struct stat st;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    memset(p, 0, sizeof(*p));
    rc = client_profile_path(dir, "profile.json", path, sizeof(path));
    if (rc != 0)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    if (fstat(fd, &st) != 0) {
        rc = ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        rc = ERR_DENIED;
        goto out;
    }
    if (st.st_size > PROFILE_MAX_BYTES) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    buf = malloc(PROFILE_MAX_BYTES + 1);
    if (!buf) {
        rc = ERR_NOMEM;
        goto out;
    }
    while (len < PROFILE_MAX_BYTES) {
        n = read(fd, buf + len, PROFILE_MAX_BYTES - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = client_profile_parse(buf, len, p);
out:
    free(buf);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ERR_IO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int client_profile_save(const char *dir, const struct client_profile *p)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    char *text = NULL;
    json_t *root = NULL;
    int fd = -1, dfd = -1, rc;

    tmp[0] = '\0';
    rc = client_profile_mkdir(dir);
    if (rc != 0)
        return rc;
    if ((rc = client_profile_path(dir, "profile.json", path, sizeof(path))) != 0 ||
        (rc = client_profile_path(dir, "profile.json.XXXXXX", tmp, sizeof(tmp))) != 0)
        return rc;
    root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "version", CLIENT_PROFILE_VERSION,
                     "server", p->server, "id", p->id, "device", p->device, "domain",
                     p->domain, "role", p->role);
    text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    if (!text) {
        rc = ERR_NOMEM;
        tmp[0] = '\0';
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ERR_IO;
        tmp[0] = '\0';
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 ||
        write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        rc = ERR_IO;
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0 || rename(tmp, path) != 0) {
        rc = ERR_IO;
        goto out;
    }
    tmp[0] = '\0';
    /* make the rename durable */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = ERR_IO;
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp[0])
        unlink(tmp);
    free(text);
    json_decref(root);
    return rc;
}

int client_profile_write_key(const char *dir, const uint8_t seed[32], const char *passphrase)
{
    char path[PATH_MAX];
    int rc = client_profile_mkdir(dir);

    if (rc == 0)
        rc = client_profile_path(dir, "device.key", path, sizeof(path));
    if (rc == 0)
        rc = keyfile_write(path, KEYFILE_DEVICE, seed, passphrase);
    return rc;
}

int client_profile_read_key(const char *dir, const char *passphrase, uint8_t seed[32])
{
    char path[PATH_MAX];
    int rc = client_profile_path(dir, "device.key", path, sizeof(path));

    if (rc == 0)
        rc = keyfile_read(path, KEYFILE_DEVICE, passphrase, seed);
    return rc;
}
