/*
 * src/storage/sqlite_vfs.h - the SQLite adapter's VFS shim, which writes a
 * commit's WAL frames with one system call (sqlite_vfs.c).  Internal.
 */
#ifndef TB_STORAGE_SQLITE_VFS_H
#define TB_STORAGE_SQLITE_VFS_H

#include <sqlite3.h>

/*
 * The name of the VFS to open connections with, registered on first use
 * (thread-safe), or NULL for SQLite's default VFS when the shim cannot be
 * used (a library older than 3.31).
 */
const char *tb_sqlite__vfs(void);

#endif
