/* The little msgpack the CLI's hot path needs: a growable writer for one request map,
 * and a bounds-checked reader over one reply frame (no allocation, no trust in lengths).
 * Formats: https://github.com/msgpack/msgpack/blob/master/spec.md */
#ifndef LW_CLI_MSGPACK_H
#define LW_CLI_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed; /* out of memory: the buffer is unusable */
} mp_writer;

void mp_write_map(mp_writer *w, uint32_t entries);
void mp_write_array(mp_writer *w, uint32_t items);
void mp_write_str(mp_writer *w, const char *s, size_t len);
void mp_write_cstr(mp_writer *w, const char *s);
void mp_write_bin(mp_writer *w, const void *data, size_t len);
void mp_write_uint(mp_writer *w, uint64_t value);
void mp_write_double(mp_writer *w, double value);
void mp_write_bool(mp_writer *w, int value);
void mp_writer_free(mp_writer *w);

/* A window over one encoded value: [p, end). */
typedef struct {
    const uint8_t *p, *end;
} mp_value;

enum mp_kind { MP_INVALID, MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

/* The kind of the value at v.p (MP_INVALID when truncated or malformed). */
enum mp_kind mp_kind(mp_value v);
/* The window of the whole value at v.p, or {NULL, NULL} when malformed or nested too deep. */
mp_value mp_next(mp_value v);
/* The value of `key` in the map v, or {NULL, NULL} when absent or v is not a map. */
mp_value mp_get(mp_value map, const char *key);
/* The bytes of a str or bin; 0 on success. */
int mp_bytes(mp_value v, const uint8_t **data, size_t *len);
/* An integer (negative allowed); 0 on success. */
int mp_int(mp_value v, int64_t *out);
/* A bool; absent or not a bool reads as `fallback`. */
int mp_bool(mp_value v, int fallback);
/* Whether the str `text` is one of the array's items. */
int mp_array_has_str(mp_value array, const char *text);
/* 1 when the str v equals text. */
int mp_str_is(mp_value v, const char *text);

#endif
