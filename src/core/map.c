/* SPDX-License-Identifier: MIT */
/* map.c -- open-addressing string map with FNV-1a hashing. */
#include "map.h"

#include <stdint.h>
#include <string.h>

#include "xalloc.h"

static char tombstone;
#define MAP_TOMBSTONE (&tombstone)

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void map_init(struct map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
    m->used = 0;
}

void map_release(struct map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != MAP_TOMBSTONE)
            xfree(m->slots[i].key);
    xfree(m->slots);
    map_init(m);
}

static struct map_entry *find(const struct map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        struct map_entry *e = &m->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->key != MAP_TOMBSTONE && strcmp(e->key, key) == 0)
            return e;
    }
}

void *map_get(const struct map *m, const char *key)
{
    struct map_entry *e = find(m, key);
    return e ? e->value : NULL;
}

static void insert_new(struct map *m, char *key, void *value)
{
    size_t mask = m->cap - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key != NULL && m->slots[i].key != MAP_TOMBSTONE)
        i = (i + 1) & mask;
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->len++;
}

static void rehash(struct map *m, size_t cap)
{
    struct map_entry *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = xcalloc(cap, sizeof(*m->slots));
    m->cap = cap;
    m->len = 0;
    m->used = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key && old[i].key != MAP_TOMBSTONE)
            insert_new(m, old[i].key, old[i].value);
    xfree(old);
}

void map_set(struct map *m, const char *key, void *value)
{
    struct map_entry *e = find(m, key);
    if (e) {
        e->value = value;
        return;
    }
    if ((m->used + 1) * 4 >= m->cap * 3)
        rehash(m, m->cap ? (m->len * 2 >= m->cap ? m->cap * 2 : m->cap) : 16);
    insert_new(m, xstrdup(key), value);
}

void *map_del(struct map *m, const char *key)
{
    struct map_entry *e = find(m, key);
    if (e == NULL)
        return NULL;
    void *v = e->value;
    xfree(e->key);
    e->key = MAP_TOMBSTONE;
    e->value = NULL;
    m->len--;
    return v;
}

int map_next(const struct map *m, size_t *iter, const char **key, void **value)
{
    for (; *iter < m->cap; (*iter)++) {
        struct map_entry *e = &m->slots[*iter];
        if (e->key && e->key != MAP_TOMBSTONE) {
            *key = e->key;
            *value = e->value;
            (*iter)++;
            return 1;
        }
    }
    return 0;
}
