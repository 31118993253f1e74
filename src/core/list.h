/* SPDX-License-Identifier: MIT */
/* list.h -- intrusive doubly linked list (libuv queue.h / linux list.h style). */
#ifndef CORE_LIST_H
#define CORE_LIST_H

#include <stddef.h>

struct list_node {
    struct list_node *prev, *next;
};

#define LIST_ENTRY(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline int list_empty(const struct list_node *head)
{
    return head->next == head;
}

static inline void list_insert_tail(struct list_node *head, struct list_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#endif
