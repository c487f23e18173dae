/*
 * The unit tests' in-memory store (store_mem.c): one gate in a shared
 * mapping, driven by the same policy as the file store.
 */
#ifndef GATERUN_STORE_MEM_H
#define GATERUN_STORE_MEM_H

#include "store.h"

extern const struct store_ops store_mem_ops;

/* Make the shared mapping; call before the test forks. 0 or -1. */
int	store_mem_init(void);

#endif
