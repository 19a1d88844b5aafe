/*
 * tests/support/storage_contract.h - the storage adapter contract suite.
 *
 * Written once against the tb_storage vtable (storage.h) and run unchanged
 * against every adapter: SQLite on a file and in memory, PostgreSQL later.
 * Each case opens a fresh, empty adapter through the caller's factory, so
 * cases never see each other's rows.
 *
 * What the suite assumes of an adapter beyond storage.h:
 * - ids are UUID text (the cases use valid UUIDs, so a uuid column works);
 * - event payloads are JSON objects with one key (a jsonb column keeps them
 *   byte for byte);
 * - after a method fails, the case only rolls back (PostgreSQL aborts the
 *   whole transaction on an error);
 * - a callback of a list method may call other methods of the same
 *   transaction;
 * - tickets.order_id is not a foreign key (a ticket's lock names an order
 *   that references the ticket).
 */
#ifndef TB_TESTS_STORAGE_CONTRACT_H
#define TB_TESTS_STORAGE_CONTRACT_H

#include "ticketyboo/storage.h"

/** Open a new, empty adapter; NULL on failure (the case then fails). */
typedef tb_storage *(*tb_storage_contract_open_fn)(void *ctx);

/**
 * Run every contract case as one cmocka group named after the adapter.
 * Each case opens its adapter with open_fresh(ctx) and frees it with
 * tb_storage_free().  Not reentrant: run one suite at a time.
 * @return the number of failed cases (0 when all pass).
 */
int tb_storage_contract_run(const char *adapter_name, tb_storage_contract_open_fn open_fresh,
	void *ctx);

#endif
