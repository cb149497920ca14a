/*
 * wire.c: the envelope codec (see wire.h for the API and the limit table,
 * PROTOCOL.md for the envelope). Read wire_check() first: it is the bounded
 * walker that runs before msgpack-c ever sees peer bytes.
 *
 * msgpack type bytes handled by the walker (msgpack spec 2.0):
 *   | byte(s)     | type                  | payload after the type byte   |
 *   |-------------|-----------------------|-------------------------------|
 *   | 00-7f e0-ff | fixint                | none                          |
 *   | 80-8f       | fixmap (n = low 4)    | n key/value pairs             |
 *   | 90-9f       | fixarray (n = low 4)  | n values                      |
 *   | a0-bf       | fixstr (len = low 5)  | len bytes                     |
 *   | c0 c2 c3    | nil false true        | none                          |
 *   | c4 c5 c6    | bin 8/16/32           | length (1/2/4 BE), bytes      |
 *   | ca cb       | float 32/64           | 4 / 8                         |
 *   | cc-cf d0-d3 | uint / int 8..64      | 1 / 2 / 4 / 8                 |
 *   | d9 da db    | str 8/16/32           | length (1/2/4 BE), bytes      |
 *   | dc dd       | array 16/32           | count (2/4 BE), values        |
 *   | de df       | map 16/32             | count (2/4 BE), pairs         |
 *   | c1, c7-c9, d4-d8 | unused / ext     | refused (ERR_MALFORMED)       |
 */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* ---------------------------------------------------------------- walker */

struct walk {
    const uint8_t *p;
    size_t len;
    size_t off;
    size_t total;
};

static int need(const struct walk *w, size_t n)
{
    return n <= w->len - w->off ? 0 : ERR_MALFORMED;
}

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian length/count after the type byte. */
static int read_len(struct walk *w, size_t n, uint64_t *v)
{
    int rc = need(w, n);
    if (rc)
        return rc;
    *v = be(w->p + w->off, n);
    w->off += n;
    return 0;
}

static int walk_obj(struct walk *w, int depth, bool want_str);

static int walk_container(struct walk *w, int depth, uint64_t count, bool is_map)
{
    if (depth > WIRE_MAX_DEPTH)
        return ERR_TOO_BIG;
    if (count > WIRE_MAX_COUNT)
        return ERR_TOO_BIG;
    /* Every element takes at least one byte: a count larger than what
     * remains is a lie, refused before msgpack-c would allocate for it. */
    uint64_t elems = is_map ? count * 2 : count;
    if (elems > w->len - w->off)
        return ERR_MALFORMED;
    for (uint64_t i = 0; i < count; i++) {
        int rc = walk_obj(w, depth, is_map);
        if (rc)
            return rc;
        if (is_map) {
            rc = walk_obj(w, depth, false);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* depth: nesting level of the container holding this object (0 = top). */
static int walk_obj(struct walk *w, int depth, bool want_str)
{
    int rc = need(w, 1);
    if (rc)
        return rc;
    if (++w->total > WIRE_MAX_TOTAL)
        return ERR_TOO_BIG;
    uint8_t b = w->p[w->off++];
    uint64_t n = 0;
    bool is_str = (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb);
    if (want_str && !is_str)
        return ERR_MALFORMED;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if (b >= 0x80 && b <= 0x8f)
        return walk_container(w, depth + 1, b & 0x0f, true);
    if (b >= 0x90 && b <= 0x9f)
        return walk_container(w, depth + 1, b & 0x0f, false);
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
        goto skip;
    }
    switch (b) {
    case 0xc4: case 0xd9: rc = read_len(w, 1, &n); break;
    case 0xc5: case 0xda: rc = read_len(w, 2, &n); break;
    case 0xc6: case 0xdb: rc = read_len(w, 4, &n); break;
    case 0xca: n = 4; goto skip;
    case 0xcb: n = 8; goto skip;
    case 0xcc: case 0xd0: n = 1; goto skip;
    case 0xcd: case 0xd1: n = 2; goto skip;
    case 0xce: case 0xd2: n = 4; goto skip;
    case 0xcf: case 0xd3: n = 8; goto skip;
    case 0xdc:
        rc = read_len(w, 2, &n);
        return rc ? rc : walk_container(w, depth + 1, n, false);
    case 0xdd:
        rc = read_len(w, 4, &n);
        return rc ? rc : walk_container(w, depth + 1, n, false);
    case 0xde:
        rc = read_len(w, 2, &n);
        return rc ? rc : walk_container(w, depth + 1, n, true);
    case 0xdf:
        rc = read_len(w, 4, &n);
        return rc ? rc : walk_container(w, depth + 1, n, true);
    default:
        return ERR_MALFORMED; /* c1, ext types */
    }
    if (rc)
        return rc;
skip:
    if (n > w->len - w->off)
        return ERR_MALFORMED;
    w->off += (size_t)n;
    return 0;
}

int wire_check(const uint8_t *buf, size_t len)
{
    if (len > WIRE_MAX_FRAME)
        return ERR_TOO_BIG;
    if (!buf || len == 0)
        return ERR_MALFORMED;
    struct walk w = {.p = buf, .len = len, .off = 0, .total = 0};
    int rc = walk_obj(&w, 0, false);
    if (rc)
        return rc;
    return w.off == len ? 0 : ERR_MALFORMED;
}

/* --------------------------------------------------------------- getters */

static const msgpack_object *lookup(const struct wire_map *map, const char *key)
{
    if (!map || !map->kv)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->n; i++) {
        const msgpack_object *k = &map->kv[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->kv[i].val;
    }
    return NULL;
}

static int found(const msgpack_object *o, msgpack_object_type t)
{
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return ERR_NOT_FOUND;
    return o->type == t ? 0 : ERR_MALFORMED;
}

int wire_get_str(const struct wire_map *map, const char *key, const char **p, size_t *len)
{
    const msgpack_object *o = lookup(map, key);
    int rc = found(o, MSGPACK_OBJECT_STR);
    if (rc)
        return rc;
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int wire_get_bin(const struct wire_map *map, const char *key, const uint8_t **p, size_t *len)
{
    const msgpack_object *o = lookup(map, key);
    int rc = found(o, MSGPACK_OBJECT_BIN);
    if (rc)
        return rc;
    *p = (const uint8_t *)o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

int wire_get_uint(const struct wire_map *map, const char *key, uint64_t *v)
{
    const msgpack_object *o = lookup(map, key);
    int rc = found(o, MSGPACK_OBJECT_POSITIVE_INTEGER);
    if (rc)
        return rc;
    *v = o->via.u64;
    return 0;
}

int wire_get_int(const struct wire_map *map, const char *key, int64_t *v)
{
    const msgpack_object *o = lookup(map, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return ERR_NOT_FOUND;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    return ERR_MALFORMED;
}

int wire_get_bool(const struct wire_map *map, const char *key, bool *v)
{
    const msgpack_object *o = lookup(map, key);
    int rc = found(o, MSGPACK_OBJECT_BOOLEAN);
    if (rc)
        return rc;
    *v = o->via.boolean;
    return 0;
}

static int as_map(const msgpack_object *o, struct wire_map *out)
{
    int rc = found(o, MSGPACK_OBJECT_MAP);
    if (rc)
        return rc;
    out->kv = o->via.map.ptr;
    out->n = o->via.map.size;
    return 0;
}

int wire_get_map(const struct wire_map *map, const char *key, struct wire_map *out)
{
    return as_map(lookup(map, key), out);
}

int wire_get_array(const struct wire_map *map, const char *key, struct wire_array *out)
{
    const msgpack_object *o = lookup(map, key);
    int rc = found(o, MSGPACK_OBJECT_ARRAY);
    if (rc)
        return rc;
    out->item = o->via.array.ptr;
    out->n = o->via.array.size;
    return 0;
}

int wire_get_cstr(const struct wire_map *map, const char *key, char *dst, size_t cap)
{
    const char *p;
    size_t len;
    int rc = wire_get_str(map, key, &p, &len);
    if (rc)
        return rc;
    if (len >= cap)
        return ERR_TOO_BIG;
    if (memchr(p, 0, len))
        return ERR_INVALID;
    memcpy(dst, p, len);
    dst[len] = 0;
    return 0;
}

bool wire_has(const struct wire_map *map, const char *key)
{
    return lookup(map, key) != NULL;
}

int wire_array_str(const struct wire_array *a, uint32_t i, const char **p, size_t *len)
{
    if (!a || i >= a->n)
        return ERR_NOT_FOUND;
    const msgpack_object *o = &a->item[i];
    if (o->type != MSGPACK_OBJECT_STR)
        return ERR_MALFORMED;
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int wire_array_map(const struct wire_array *a, uint32_t i, struct wire_map *out)
{
    if (!a || i >= a->n)
        return ERR_NOT_FOUND;
    int rc = as_map(&a->item[i], out);
    return rc == ERR_NOT_FOUND ? ERR_MALFORMED : rc;
}

/* --------------------------------------------------------------- decoder */

/* Copies a str value of 1..WIRE_MAX_NAME bytes into dst. */
static int get_name(const struct wire_map *m, const char *key, char dst[WIRE_MAX_NAME + 1])
{
    const char *p;
    size_t len;
    int rc = wire_get_str(m, key, &p, &len);
    if (rc)
        return ERR_MALFORMED;
    if (len == 0 || memchr(p, 0, len))
        return ERR_MALFORMED;
    if (len > WIRE_MAX_NAME)
        return ERR_TOO_BIG;
    memcpy(dst, p, len);
    dst[len] = 0;
    return 0;
}

/* Optional map: absent or nil = empty. */
static int get_body(const struct wire_map *m, const char *key, struct wire_map *out)
{
    int rc = wire_get_map(m, key, out);
    if (rc == ERR_NOT_FOUND) {
        out->kv = NULL;
        out->n = 0;
        return 0;
    }
    return rc ? ERR_MALFORMED : 0;
}

/* The decode zone's first chunk: with msgpack's chunk header, a malloc
 * under 1 KiB (see wire_decode). */
#define WIRE_ZONE_CHUNK 960

int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out)
{
    memset(out, 0, sizeof(*out));
    int rc = wire_check(buf, len);
    if (rc)
        return rc;

    /* A zone of its own with a first chunk below glibc's large-request
     * size: msgpack_unpack_next's 8 KiB zone made every decode a large
     * malloc and free, and each large malloc consolidates the fast bins
     * (1-2 % of the server's CPU at load). A typical envelope's maps and
     * arrays fit the first chunk; a bigger one adds chunks. */
    out->zone = msgpack_zone_new(WIRE_ZONE_CHUNK);
    if (!out->zone)
        return ERR_NOMEM;
    size_t off = 0;
    msgpack_unpack_return ur =
        msgpack_unpack((const char *)buf, len, &off, out->zone, &out->root);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return ERR_NOMEM;
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        return ERR_MALFORMED;

    struct wire_map top;
    if (as_map(&out->root, &top) != 0)
        return ERR_MALFORMED;

    /* The id first, so that even a refused request can be answered. */
    uint64_t id = 0;
    bool has_id = false;
    rc = wire_get_uint(&top, "id", &id);
    if (rc == 0 && id <= UINT32_MAX) {
        out->id = (uint32_t)id;
        has_id = true;
    } else if (rc != ERR_NOT_FOUND) {
        return ERR_MALFORMED;
    }

    bool unsupported = false;
    if (wire_get_uint(&top, "v", &out->version) != 0)
        return ERR_MALFORMED;
    if (out->version != WIRE_VERSION)
        unsupported = true;

    if (wire_has(&top, "op")) {
        /* a request without an id is a notification (WIRE_NOTE); a request
         * that has one needs 1..2^32-1 */
        out->kind = has_id ? WIRE_REQUEST : WIRE_NOTE;
        if (has_id && out->id == 0)
            return ERR_MALFORMED;
        rc = get_name(&top, "op", out->name);
        if (rc)
            return rc;
        rc = get_body(&top, "args", &out->body);
    } else if (wire_has(&top, "ev")) {
        out->kind = WIRE_EVENT;
        out->id = 0; /* events are never answered: an id is ignored */
        rc = get_name(&top, "ev", out->name);
        if (rc)
            return rc;
        rc = get_body(&top, "data", &out->body);
    } else if (wire_has(&top, "ok") || wire_has(&top, "err")) {
        out->kind = WIRE_RESPONSE;
        if (!has_id || (wire_has(&top, "ok") && wire_has(&top, "err")))
            return ERR_MALFORMED;
        if (wire_has(&top, "ok")) {
            out->ok = true;
            rc = wire_get_map(&top, "ok", &out->body) ? ERR_MALFORMED : 0;
        } else {
            if (wire_get_map(&top, "err", &out->body) != 0)
                return ERR_MALFORMED;
            rc = get_name(&out->body, "code", out->name);
            if (rc)
                return rc;
            if (wire_get_str(&out->body, "msg", &out->err_msg, &out->err_msg_len) != 0)
                return ERR_MALFORMED;
        }
    } else {
        return ERR_MALFORMED;
    }
    if (rc)
        return rc;
    return unsupported ? ERR_UNSUPPORTED : 0;
}

void wire_msg_free(struct wire_msg *msg)
{
    if (!msg)
        return;
    if (msg->zone)
        msgpack_zone_free(msg->zone);
    msg->zone = NULL;
}

/* --------------------------------------------------------------- encoder */

/* The encoder's buffer starts small and doubles: msgpack_sbuffer_write
 * starts at 8 KiB, a large malloc (and free) per encoded frame, and every
 * large malloc consolidates glibc's fast bins (1-2 % of the server's CPU at
 * load). Most frames fit the first 512 bytes. */
#define WIRE_ENC_FIRST 512

static int enc_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    if (sb->alloc - sb->size < len) {
        size_t n = sb->alloc ? sb->alloc : WIRE_ENC_FIRST;
        while (n - sb->size < len) {
            if (n > SIZE_MAX / 2)
                return -1;
            n *= 2;
        }
        char *d = realloc(sb->data, n);
        if (!d)
            return -1;
        sb->data = d;
        sb->alloc = n;
    }
    memcpy(sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
}

void wire_enc_init(struct wire_enc *e)
{
    msgpack_sbuffer_init(&e->sb);
    msgpack_packer_init(&e->pk, &e->sb, enc_write);
    e->err = 0;
}

void wire_enc_reset(struct wire_enc *e)
{
    msgpack_sbuffer_destroy(&e->sb);
    memset(e, 0, sizeof(*e));
}

static void chk(struct wire_enc *e, int r)
{
    if (r != 0 && e->err == 0)
        e->err = ERR_NOMEM;
}

void wire_enc_str(struct wire_enc *e, const char *s)
{
    wire_enc_strn(e, s, strlen(s));
}

void wire_enc_strn(struct wire_enc *e, const char *s, size_t len)
{
    if (e->err)
        return;
    if (len > UINT32_MAX) {
        e->err = ERR_INVALID;
        return;
    }
    chk(e, msgpack_pack_str(&e->pk, len));
    if (!e->err && len)
        chk(e, msgpack_pack_str_body(&e->pk, s, len));
}

void wire_enc_bin(struct wire_enc *e, const uint8_t *p, size_t len)
{
    if (e->err)
        return;
    if (len > UINT32_MAX) {
        e->err = ERR_INVALID;
        return;
    }
    chk(e, msgpack_pack_bin(&e->pk, len));
    if (!e->err && len)
        chk(e, msgpack_pack_bin_body(&e->pk, p, len));
}

void wire_enc_uint(struct wire_enc *e, uint64_t v)
{
    if (!e->err)
        chk(e, msgpack_pack_uint64(&e->pk, v));
}

void wire_enc_int(struct wire_enc *e, int64_t v)
{
    if (!e->err)
        chk(e, msgpack_pack_int64(&e->pk, v));
}

void wire_enc_bool(struct wire_enc *e, bool v)
{
    if (!e->err)
        chk(e, v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk));
}

void wire_enc_nil(struct wire_enc *e)
{
    if (!e->err)
        chk(e, msgpack_pack_nil(&e->pk));
}

void wire_enc_map(struct wire_enc *e, uint32_t n)
{
    if (!e->err)
        chk(e, msgpack_pack_map(&e->pk, n));
}

void wire_enc_array(struct wire_enc *e, uint32_t n)
{
    if (!e->err)
        chk(e, msgpack_pack_array(&e->pk, n));
}

void wire_enc_key(struct wire_enc *e, const char *key)
{
    wire_enc_str(e, key);
}

void wire_kv_str(struct wire_enc *e, const char *key, const char *s)
{
    wire_enc_key(e, key);
    wire_enc_str(e, s);
}

void wire_kv_strn(struct wire_enc *e, const char *key, const char *s, size_t len)
{
    wire_enc_key(e, key);
    wire_enc_strn(e, s, len);
}

void wire_kv_bin(struct wire_enc *e, const char *key, const uint8_t *p, size_t len)
{
    wire_enc_key(e, key);
    wire_enc_bin(e, p, len);
}

void wire_kv_uint(struct wire_enc *e, const char *key, uint64_t v)
{
    wire_enc_key(e, key);
    wire_enc_uint(e, v);
}

void wire_kv_bool(struct wire_enc *e, const char *key, bool v)
{
    wire_enc_key(e, key);
    wire_enc_bool(e, v);
}

void wire_enc_request(struct wire_enc *e, uint32_t id, const char *op, uint32_t nbody)
{
    wire_enc_map(e, 4);
    wire_kv_uint(e, "v", WIRE_VERSION);
    wire_kv_uint(e, "id", id);
    wire_kv_str(e, "op", op);
    wire_enc_key(e, "args");
    wire_enc_map(e, nbody);
}

void wire_enc_note(struct wire_enc *e, const char *op, uint32_t nbody)
{
    wire_enc_map(e, 3);
    wire_kv_uint(e, "v", WIRE_VERSION);
    wire_kv_str(e, "op", op);
    wire_enc_key(e, "args");
    wire_enc_map(e, nbody);
}

void wire_enc_ok(struct wire_enc *e, uint32_t id, uint32_t nbody)
{
    wire_enc_map(e, 3);
    wire_kv_uint(e, "v", WIRE_VERSION);
    wire_kv_uint(e, "id", id);
    wire_enc_key(e, "ok");
    wire_enc_map(e, nbody);
}

void wire_enc_event(struct wire_enc *e, const char *ev, uint32_t nbody)
{
    wire_enc_map(e, 3);
    wire_kv_uint(e, "v", WIRE_VERSION);
    wire_kv_str(e, "ev", ev);
    wire_enc_key(e, "data");
    wire_enc_map(e, nbody);
}

void wire_enc_err(struct wire_enc *e, uint32_t id, const char *code, const char *msg)
{
    wire_enc_map(e, 3);
    wire_kv_uint(e, "v", WIRE_VERSION);
    wire_kv_uint(e, "id", id);
    wire_enc_key(e, "err");
    wire_enc_map(e, 2);
    wire_kv_str(e, "code", code);
    wire_kv_str(e, "msg", msg);
}

void wire_enc_append(struct wire_enc *e, const struct wire_enc *values)
{
    if (e->err)
        return;
    if (values->err) {
        e->err = values->err;
        return;
    }
    if (values->sb.size)
        chk(e, enc_write(&e->sb, values->sb.data, values->sb.size));
}

int wire_enc_finish(struct wire_enc *e, const uint8_t **data, size_t *len)
{
    if (e->err)
        return e->err;
    *data = (const uint8_t *)e->sb.data;
    *len = e->sb.size;
    return 0;
}
