/* See msgpack.h. The reader never reads outside [p, end): every length in a frame
 * comes from the other side of a socket. */
#include "msgpack.h"

#include <stdlib.h>
#include <string.h>

#define MP_MAX_DEPTH 64 /* deeper than any reply of the protocol; bounds the recursion */

/* ------------------------------------------------------------ writer */

static void put(mp_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return;
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        uint8_t *grown;
        while (cap < w->len + len)
            cap *= 2;
        grown = realloc(w->data, cap);
        if (grown == NULL) {
            w->failed = 1;
            return;
        }
        w->data = grown;
        w->cap = cap;
    }
    memcpy(w->data + w->len, data, len);
    w->len += len;
}

static void put_be(mp_writer *w, uint8_t tag, uint64_t value, int bytes)
{
    uint8_t out[9];
    out[0] = tag;
    for (int i = 0; i < bytes; i++)
        out[1 + i] = (uint8_t)(value >> (8 * (bytes - 1 - i)));
    put(w, out, 1 + (size_t)bytes);
}

static void put_header(mp_writer *w, uint64_t n, uint8_t fix, uint64_t fix_max, uint8_t t8, uint8_t t16, uint8_t t32)
{
    if (fix && n <= fix_max) {
        uint8_t tag = (uint8_t)(fix | n);
        put(w, &tag, 1);
    } else if (t8 && n <= 0xff) {
        put_be(w, t8, n, 1);
    } else if (n <= 0xffff) {
        put_be(w, t16, n, 2);
    } else {
        put_be(w, t32, n, 4);
    }
}

void mp_write_map(mp_writer *w, uint32_t entries) { put_header(w, entries, 0x80, 15, 0, 0xde, 0xdf); }
void mp_write_array(mp_writer *w, uint32_t items) { put_header(w, items, 0x90, 15, 0, 0xdc, 0xdd); }

void mp_write_str(mp_writer *w, const char *s, size_t len)
{
    put_header(w, len, 0xa0, 31, 0xd9, 0xda, 0xdb);
    put(w, s, len);
}

void mp_write_cstr(mp_writer *w, const char *s) { mp_write_str(w, s, strlen(s)); }

void mp_write_bin(mp_writer *w, const void *data, size_t len)
{
    put_header(w, len, 0, 0, 0xc4, 0xc5, 0xc6);
    put(w, data, len);
}

void mp_write_uint(mp_writer *w, uint64_t value)
{
    if (value <= 0x7f) {
        uint8_t tag = (uint8_t)value;
        put(w, &tag, 1);
    } else {
        put_be(w, 0xcf, value, 8);
    }
}

void mp_write_double(mp_writer *w, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_be(w, 0xcb, bits, 8);
}

void mp_write_bool(mp_writer *w, int value)
{
    uint8_t tag = value ? 0xc3 : 0xc2;
    put(w, &tag, 1);
}

void mp_writer_free(mp_writer *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------ reader */

static const mp_value NONE = {NULL, NULL};

static int has(mp_value v, size_t n) { return v.p != NULL && (size_t)(v.end - v.p) >= n; }

static uint64_t be(const uint8_t *p, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value = value << 8 | p[i];
    return value;
}

/* Decodes the head of the value at v.p: its kind, the size of the head, and the
 * length (bytes of a str/bin/ext payload, items of an array, entries of a map). */
static enum mp_kind head(mp_value v, size_t *head_len, uint64_t *n)
{
    uint8_t tag;
    int width = 0;
    enum mp_kind kind;
    if (!has(v, 1))
        return MP_INVALID;
    tag = v.p[0];
    *head_len = 1;
    *n = 0;
    if (tag <= 0x7f || tag >= 0xe0)
        return MP_INT;
    if (tag >= 0x80 && tag <= 0x8f) { *n = tag & 0x0f; return MP_MAP; }
    if (tag >= 0x90 && tag <= 0x9f) { *n = tag & 0x0f; return MP_ARRAY; }
    if (tag >= 0xa0 && tag <= 0xbf) { *n = tag & 0x1f; return MP_STR; }
    switch (tag) {
    case 0xc0: return MP_NIL;
    case 0xc2: case 0xc3: return MP_BOOL;
    case 0xc4: kind = MP_BIN; width = 1; break;
    case 0xc5: kind = MP_BIN; width = 2; break;
    case 0xc6: kind = MP_BIN; width = 4; break;
    case 0xc7: kind = MP_EXT; width = 1; break;
    case 0xc8: kind = MP_EXT; width = 2; break;
    case 0xc9: kind = MP_EXT; width = 4; break;
    case 0xca: *head_len = 5; return has(v, 5) ? MP_FLOAT : MP_INVALID;
    case 0xcb: *head_len = 9; return has(v, 9) ? MP_FLOAT : MP_INVALID;
    case 0xcc: case 0xd0: *head_len = 2; return has(v, 2) ? MP_INT : MP_INVALID;
    case 0xcd: case 0xd1: *head_len = 3; return has(v, 3) ? MP_INT : MP_INVALID;
    case 0xce: case 0xd2: *head_len = 5; return has(v, 5) ? MP_INT : MP_INVALID;
    case 0xcf: case 0xd3: *head_len = 9; return has(v, 9) ? MP_INT : MP_INVALID;
    case 0xd4: *head_len = 2; *n = 1; return MP_EXT;
    case 0xd5: *head_len = 2; *n = 2; return MP_EXT;
    case 0xd6: *head_len = 2; *n = 4; return MP_EXT;
    case 0xd7: *head_len = 2; *n = 8; return MP_EXT;
    case 0xd8: *head_len = 2; *n = 16; return MP_EXT;
    case 0xd9: kind = MP_STR; width = 1; break;
    case 0xda: kind = MP_STR; width = 2; break;
    case 0xdb: kind = MP_STR; width = 4; break;
    case 0xdc: kind = MP_ARRAY; width = 2; break;
    case 0xdd: kind = MP_ARRAY; width = 4; break;
    case 0xde: kind = MP_MAP; width = 2; break;
    case 0xdf: kind = MP_MAP; width = 4; break;
    default: return MP_INVALID; /* 0xc1: never used */
    }
    if (!has(v, 1 + (size_t)width))
        return MP_INVALID;
    *n = be(v.p + 1, width);
    *head_len = 1 + (size_t)width + (kind == MP_EXT); /* ext: a type byte after the length */
    return kind;
}

enum mp_kind mp_kind(mp_value v)
{
    size_t head_len;
    uint64_t n;
    return head(v, &head_len, &n);
}

static mp_value next_at(mp_value v, int depth)
{
    size_t head_len;
    uint64_t n;
    enum mp_kind kind = head(v, &head_len, &n);
    mp_value rest;
    if (kind == MP_INVALID || depth > MP_MAX_DEPTH || !has(v, head_len))
        return NONE;
    rest.p = v.p + head_len;
    rest.end = v.end;
    if (kind == MP_STR || kind == MP_BIN || kind == MP_EXT) {
        if ((uint64_t)(rest.end - rest.p) < n)
            return NONE;
        return (mp_value){v.p, rest.p + n};
    }
    if (kind == MP_ARRAY || kind == MP_MAP) {
        uint64_t items = kind == MP_MAP ? 2 * n : n;
        for (uint64_t i = 0; i < items; i++) {
            mp_value item = next_at(rest, depth + 1);
            if (item.p == NULL)
                return NONE;
            rest.p = item.end;
        }
        return (mp_value){v.p, rest.p};
    }
    return (mp_value){v.p, rest.p};
}

mp_value mp_next(mp_value v) { return next_at(v, 0); }

int mp_bytes(mp_value v, const uint8_t **data, size_t *len)
{
    size_t head_len;
    uint64_t n;
    enum mp_kind kind = head(v, &head_len, &n);
    mp_value whole = mp_next(v);
    if ((kind != MP_STR && kind != MP_BIN) || whole.p == NULL)
        return -1;
    *data = v.p + head_len;
    *len = (size_t)n;
    return 0;
}

int mp_str_is(mp_value v, const char *text)
{
    const uint8_t *data;
    size_t len;
    return mp_kind(v) == MP_STR && mp_bytes(v, &data, &len) == 0 && len == strlen(text)
           && memcmp(data, text, len) == 0;
}

/* The window from the first item of a container of `kind` to the end, and its item
 * count (twice the entries for a map); {NULL, NULL} when v is not a whole such value. */
static mp_value items_of(mp_value v, enum mp_kind kind, uint64_t *count)
{
    size_t head_len;
    uint64_t n;
    if (head(v, &head_len, &n) != kind || mp_next(v).p == NULL)
        return NONE;
    *count = kind == MP_MAP ? 2 * n : n;
    return (mp_value){v.p + head_len, v.end};
}

mp_value mp_get(mp_value map, const char *key)
{
    uint64_t count = 0;
    mp_value at = items_of(map, MP_MAP, &count);
    for (uint64_t i = 0; i < count; i += 2) {
        mp_value k = mp_next(at), value;
        value = (mp_value){k.end, at.end};
        value = mp_next(value);
        if (mp_str_is(k, key))
            return (mp_value){value.p, at.end};
        at.p = value.end;
    }
    return NONE;
}

int mp_int(mp_value v, int64_t *out)
{
    uint8_t tag;
    if (mp_kind(v) != MP_INT)
        return -1;
    tag = v.p[0];
    if (tag <= 0x7f) *out = tag;
    else if (tag >= 0xe0) *out = (int8_t)tag;
    else if (tag == 0xcc) *out = (int64_t)be(v.p + 1, 1);
    else if (tag == 0xcd) *out = (int64_t)be(v.p + 1, 2);
    else if (tag == 0xce) *out = (int64_t)be(v.p + 1, 4);
    else if (tag == 0xcf) {
        uint64_t u = be(v.p + 1, 8);
        if (u > INT64_MAX)
            return -1;
        *out = (int64_t)u;
    }
    else if (tag == 0xd0) *out = (int8_t)be(v.p + 1, 1);
    else if (tag == 0xd1) *out = (int16_t)be(v.p + 1, 2);
    else if (tag == 0xd2) *out = (int32_t)be(v.p + 1, 4);
    else *out = (int64_t)be(v.p + 1, 8);
    return 0;
}

int mp_bool(mp_value v, int fallback)
{
    if (mp_kind(v) != MP_BOOL)
        return fallback;
    return v.p[0] == 0xc3;
}

int mp_array_has_str(mp_value array, const char *text)
{
    uint64_t count = 0;
    mp_value at = items_of(array, MP_ARRAY, &count);
    for (uint64_t i = 0; i < count; i++) {
        if (mp_str_is(at, text))
            return 1;
        at.p = mp_next(at).end;
    }
    return 0;
}
