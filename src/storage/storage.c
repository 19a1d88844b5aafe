/*
 * src/storage/storage.c - what every storage adapter shares.
 */
#include "ticketyboo/storage.h"

TB_API void tb_storage_free(tb_storage *storage)
{
	if (storage && storage->destroy)
		storage->destroy(storage);
}
