/* SPDX-License-Identifier: MIT */
/* multipart.h -- a pure multipart/form-data parser (RFC 7578 over RFC 2046 §5.1): fed the body
 * in pieces of any size, it reports each part's head (name, filename, content type) and streams
 * its content through callbacks, holding back at most one delimiter's worth of bytes. No I/O and
 * no allocation beyond the struct itself, so tests/unit/test_multipart.c and
 * tests/fuzz/fuzz_multipart.c drive it directly; the upload route (upload.c) streams to disk. */
#ifndef API_MULTIPART_H
#define API_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 §5.1.1 */
#define MULTIPART_MAX_HEAD 8192   /* one part's header block */
#define MULTIPART_MAX_NAME 1024   /* name, filename and content type values, each */

enum multipart_err {
    MULTIPART_OK = 0,
    MULTIPART_E_SYNTAX = -1,    /* not multipart framing, or a malformed part head */
    MULTIPART_E_HEAD = -2,      /* a part's header block over MULTIPART_MAX_HEAD */
    MULTIPART_E_PARTS = -3,     /* more parts than allowed */
    MULTIPART_E_TRUNCATED = -4, /* multipart_finish before the closing delimiter */
    MULTIPART_E_STOPPED = -5,   /* a callback returned < 0 */
};

/* One part's head. The strings point into the parser and live until the next feed call. */
struct multipart_part {
    const char *name;         /* form field name ("" when absent) */
    const char *filename;     /* NULL when the part is not a file (no filename parameter) */
    const char *content_type; /* "" when absent */
};

/* Each callback returns 0 to go on, or < 0 to stop the parser (MULTIPART_E_STOPPED). */
struct multipart_cbs {
    int (*on_part)(void *data, const struct multipart_part *part);
    int (*on_data)(void *data, const char *p, size_t len);
    int (*on_part_end)(void *data);
};

enum multipart__state { MP_PREAMBLE, MP_AFTER_DELIM, MP_HEAD, MP_BODY, MP_EPILOGUE, MP_DEAD };

/* Fields are internal. */
struct multipart {
    enum multipart__state state;
    int err;
    char delim[MULTIPART_MAX_BOUNDARY + 4]; /* "\r\n--" boundary */
    size_t delim_len;
    size_t match;    /* bytes of delim matched so far */
    unsigned after;  /* bytes seen after a delimiter: "--" or blanks then "\r\n" */
    char after_prev; /* the previous of those */
    size_t parts, max_parts;
    char head[MULTIPART_MAX_HEAD + 1];
    size_t head_len;
    char name[MULTIPART_MAX_NAME + 1], filename[MULTIPART_MAX_NAME + 1];
    char ctype[MULTIPART_MAX_NAME + 1];
    bool has_filename;
};

/* The boundary parameter of a multipart/form-data Content-Type, copied into out (NUL-ended).
 * Returns its length, or -1 if the type is not multipart/form-data or has no valid boundary. */
int multipart_boundary(const char *content_type, char out[MULTIPART_MAX_BOUNDARY + 1]);
void multipart_init(struct multipart *m, const char *boundary, size_t max_parts);
/* Feeds the next bytes. Returns MULTIPART_OK or an error (sticky: later calls return it). */
int multipart_feed(struct multipart *m, const char *p, size_t len, const struct multipart_cbs *cb,
                   void *data);
/* At the end of the body: MULTIPART_OK if the closing delimiter was seen, else an error. */
int multipart_finish(struct multipart *m);

#endif
