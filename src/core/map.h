/* SPDX-License-Identifier: MIT */
/* map.h -- string-keyed hash map (open addressing, linear probing) of borrowed values. Keys are
 * copied. Used for the session table. */
#ifndef CORE_MAP_H
#define CORE_MAP_H

#include <stddef.h>

struct map_entry {
    char *key; /* NULL = empty slot, MAP_TOMBSTONE = deleted */
    void *value;
};

struct map {
    struct map_entry *slots;
    size_t cap;  /* power of two */
    size_t len;  /* live entries */
    size_t used; /* live + tombstones */
};

void map_init(struct map *m);
void map_release(struct map *m);
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces. */
void map_set(struct map *m, const char *key, void *value);
/* Returns the removed value or NULL. */
void *map_del(struct map *m, const char *key);
/* Iteration: for (size_t i = 0; map_next(m, &i, &k, &v);) */
int map_next(const struct map *m, size_t *iter, const char **key, void **value);

#endif
