/*
 * src/storage/sqlite_vfs.c - a VFS shim over SQLite's default VFS that
 * writes each commit's WAL frames with one pwrite (see sqlite_vfs.h and
 * docs/storage-sqlite.md, "WAL writes").
 *
 * SQLite appends a commit to the WAL frame by frame, two writes a frame
 * (its 24-byte header, then the page), so a commit of n pages costs 2n
 * pwrite calls, and the kernel takes each 24-byte header through the whole
 * write path of a page.  This shim keeps the writes a WAL handle makes at
 * its end in a buffer and hands them to the real file in one write when
 *
 *   - the commit frame is complete: the frame header that carries a
 *     commit (non-zero "database size after commit") and the page after
 *     it.  The flush's result is that write's result, so an error (disk
 *     full) fails the commit in sqlite3WalFrames exactly as before, and it
 *     happens before SQLite publishes the new WAL index header, so no
 *     reader (of this or another process) is ever pointed at frames that
 *     are not in the file;
 *   - any other call reaches the WAL handle (a read, a write elsewhere,
 *     sync, size, truncate, close...): it sees the file as SQLite wrote it;
 *   - the connection unlocks a WAL lock or unmaps the WAL index (its main
 *     database handle's xShmLock / xShmUnmap) or issues a memory barrier:
 *     frames of a transaction that spilled pages and then rolled back are
 *     written before another connection may write at the same offsets.
 *   - the buffer would exceed BUF_MAX.
 *
 * What reaches the file, in what order and at which offsets, is exactly
 * what SQLite wrote; only the number of system calls changes.  Durability
 * is untouched: SQLite's syncs are passed on after the flush.  When the
 * buffer cannot be allocated the writes go straight through.
 *
 * The main database handle finds its WAL handle through
 * sqlite3_database_file_object() (SQLite 3.31); with an older library the
 * shim is not registered and connections use the default VFS.
 */
#include "sqlite_vfs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VFS_NAME "tb-walbatch"
/*
 * Largest run of WAL writes held back; past it they go out in pieces.  The
 * unix VFS takes at most 128 KiB per write (seekAndWrite masks the length
 * with 0x1ffff), so a piece stays below that: 29 frames of 4 KiB pages.
 */
#define BUF_MAX (120 * 1024)
#define WAL_FRAME_HDR 24

typedef struct shim_file shim_file;
struct shim_file {
	sqlite3_file base;      /* first: SQLite sees this */
	sqlite3_file *real;     /* the default VFS's file object, right after this struct */
	bool is_wal;
	shim_file *peer;        /* main database <-> its WAL handle, when both are open */
	unsigned char *buf;     /* WAL only: pending writes, len bytes at offset off */
	size_t len, cap;
	sqlite3_int64 off;
	bool commit_page_next;  /* the last write was a commit frame's header */
};

static sqlite3_vfs shim_vfs;
static sqlite3_vfs *real_vfs;
static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static bool shim_ready;

static int flush(shim_file *f)
{
	int rc = SQLITE_OK;

	if (f->len) {
		rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
		f->len = 0;
	}
	return rc;
}

/* ---- file methods: WAL handles flush first, then everything is passed on ---- */

static shim_file *F(sqlite3_file *p)
{
	return (shim_file *)p;
}

/* The real file of p, once p's pending WAL writes are in it: for every call but xWrite. */
static sqlite3_file *flushed(sqlite3_file *p, int *rc)
{
	*rc = flush(F(p));
	return F(p)->real;
}

static int x_close(sqlite3_file *p)
{
	shim_file *f = F(p);
	int rc = flush(f);
	int rc2;

	if (f->peer)
		f->peer->peer = NULL;
	f->peer = NULL;
	free(f->buf);
	f->buf = NULL;
	rc2 = f->real->pMethods->xClose(f->real);
	return rc != SQLITE_OK ? rc : rc2;
}

/* A method that sees the file as SQLite wrote it: pending WAL writes go out first. */
#define FLUSH_THEN(name, method, params, args) \
	static int name params \
	{ \
		int rc; \
		sqlite3_file *r = flushed(p, &rc); \
		return rc != SQLITE_OK ? rc : r->pMethods->method args; \
	}

FLUSH_THEN(x_read, xRead, (sqlite3_file *p, void *out, int amt, sqlite3_int64 ofs), (r, out, amt, ofs))
FLUSH_THEN(x_truncate, xTruncate, (sqlite3_file *p, sqlite3_int64 size), (r, size))
FLUSH_THEN(x_sync, xSync, (sqlite3_file *p, int flags), (r, flags))
FLUSH_THEN(x_file_size, xFileSize, (sqlite3_file *p, sqlite3_int64 *size), (r, size))
FLUSH_THEN(x_lock, xLock, (sqlite3_file *p, int lock), (r, lock))
FLUSH_THEN(x_unlock, xUnlock, (sqlite3_file *p, int lock), (r, lock))
FLUSH_THEN(x_check_reserved, xCheckReservedLock, (sqlite3_file *p, int *out), (r, out))
FLUSH_THEN(x_file_control, xFileControl, (sqlite3_file *p, int op, void *arg), (r, op, arg))
FLUSH_THEN(x_fetch, xFetch, (sqlite3_file *p, sqlite3_int64 ofs, int amt, void **out), (r, ofs, amt, out))

static int x_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 ofs)
{
	shim_file *f = F(p);
	bool commit_page = f->commit_page_next;
	int rc;

	f->commit_page_next = false;
	if (!f->is_wal || amt <= 0)
		return f->real->pMethods->xWrite(f->real, data, amt, ofs);
	if (f->len && (ofs != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > BUF_MAX) &&
	    (rc = flush(f)) != SQLITE_OK)
		return rc;
	if (!f->buf && (f->buf = malloc(BUF_MAX)) != NULL)
		f->cap = BUF_MAX;
	if (!f->buf || (size_t)amt > f->cap)
		return f->real->pMethods->xWrite(f->real, data, amt, ofs);
	if (!f->len)
		f->off = ofs;
	memcpy(f->buf + f->len, data, (size_t)amt);
	f->len += (size_t)amt;
	if (amt == WAL_FRAME_HDR) {
		const unsigned char *h = data;
		/* Bytes 4-7 of a frame header: the database size after a commit, 0 otherwise. */
		f->commit_page_next = (h[4] | h[5] | h[6] | h[7]) != 0;
		return SQLITE_OK;
	}
	return commit_page ? flush(f) : SQLITE_OK;
}

static int x_sector_size(sqlite3_file *p)
{
	return F(p)->real->pMethods->xSectorSize(F(p)->real);
}

static int x_device_characteristics(sqlite3_file *p)
{
	return F(p)->real->pMethods->xDeviceCharacteristics(F(p)->real);
}

/* The WAL index belongs to the main database handle: its lock changes and barriers flush the WAL. */
static void flush_peer(sqlite3_file *p)
{
	if (!F(p)->is_wal && F(p)->peer)
		(void)flush(F(p)->peer);
}

static int x_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	return F(p)->real->pMethods->xShmMap(F(p)->real, pg, pgsz, extend, out);
}

static int x_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	if (flags & SQLITE_SHM_UNLOCK)
		flush_peer(p);
	return F(p)->real->pMethods->xShmLock(F(p)->real, offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *p)
{
	flush_peer(p);
	F(p)->real->pMethods->xShmBarrier(F(p)->real);
}

static int x_shm_unmap(sqlite3_file *p, int delete_flag)
{
	flush_peer(p);
	return F(p)->real->pMethods->xShmUnmap(F(p)->real, delete_flag);
}

static int x_unfetch(sqlite3_file *p, sqlite3_int64 ofs, void *ptr)
{
	return F(p)->real->pMethods->xUnfetch(F(p)->real, ofs, ptr);
}

#define IO_METHODS(v) { v, x_close, x_read, x_write, x_truncate, x_sync, x_file_size, x_lock, \
	x_unlock, x_check_reserved, x_file_control, x_sector_size, x_device_characteristics, \
	x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch, x_unfetch }

/* One table per version of the real file's methods: SQLite calls only what iVersion promises. */
static const sqlite3_io_methods io_methods[3] = { IO_METHODS(1), IO_METHODS(2), IO_METHODS(3) };

/* ---- the VFS: open wraps, the rest is the default VFS's ---------------------- */

/* The main database handle a WAL belongs to (this shim's, if opened through it). */
static shim_file *database_file(const char *wal_name)
{
#if SQLITE_VERSION_NUMBER >= 3031000
	return F(sqlite3_database_file_object(wal_name));
#else
	(void)wal_name;
	return NULL;
#endif
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	shim_file *f = F(p);
	int rc;

	(void)vfs;
	memset(f, 0, sizeof *f);
	f->real = (sqlite3_file *)(f + 1);
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || !f->real->pMethods) {
		/* SQLite calls xClose only when pMethods is set; the real file cleaned up after itself. */
		p->pMethods = NULL;
		return rc;
	}
	int version = f->real->pMethods->iVersion;
	p->pMethods = &io_methods[version < 1 ? 0 : version > 3 ? 2 : version - 1];
	if ((flags & SQLITE_OPEN_WAL) && name) {
		shim_file *db = database_file(name);

		f->is_wal = true;
		if (db && db->base.pMethods && db->base.pMethods->xClose == x_close) {
			f->peer = db;
			db->peer = f;
		}
	}
	return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs->xDlClose(real_vfs, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void shim_register(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	/* Version 2 (xCurrentTimeInt64) is all the shim forwards; older libraries lack the file lookup. */
	if (!real_vfs || real_vfs->iVersion < 2 || SQLITE_VERSION_NUMBER < 3031000 ||
	    sqlite3_libversion_number() < 3031000)
		return;
	shim_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = VFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_current_time64,
	};
	shim_ready = sqlite3_vfs_register(&shim_vfs, 0) == SQLITE_OK;
}

const char *tb_sqlite__vfs(void)
{
	pthread_once(&shim_once, shim_register);
	return shim_ready ? VFS_NAME : NULL;
}
