/*
 * tests/support/tb_pg.h - a PostgreSQL server for the tests (builds with
 * TB_WITH_POSTGRES only).
 *
 * The server: $TB_PG_CONNINFO (any libpq conninfo whose database the tests
 * may fill), else the conninfo in the file $TB_PG_CONNINFO_FILE, which the
 * ctest fixture tb_postgres (tests/postgres/start.sh) writes.  Tests work in
 * fresh schemas (tb_case_<pid>_<n>) and leave them behind: the fixture's
 * cluster is thrown away.
 *
 * Thread safety: none; call from the main thread (setup, teardown, checks).
 */
#ifndef TB_TEST_PG_H
#define TB_TEST_PG_H

#include <stddef.h>

/* The server's conninfo, or NULL when none is configured. */
const char *tbt_pg_conninfo(void);

/*
 * Run SQL on the tests' own connection; the first value of the first row
 * as an integer, -1 when there is none.  A failure fails the test.
 */
long long tbt_pg_sql(const char *sql);

/*
 * Create an empty schema; write its name, and the server's conninfo set to
 * use it (search_path) as key=value into `conninfo` and, unless `uri` is
 * NULL, as a postgresql:// URI into `uri`.
 */
void tbt_pg_schema(char name[64], char *conninfo, size_t size, char *uri, size_t uri_size);

/* Close the tests' connection (at the end of main; safe to call twice). */
void tbt_pg_close(void);

#endif
