/*
 * tests/support/tb_pg.c - a PostgreSQL server for the tests (see tb_pg.h).
 */
#include "tb_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tb_test.h"

static char conninfo_buf[2048];
static int conninfo_loaded;   /* 1 found, -1 none */
static PGconn *admin;
static unsigned int schema_counter;

const char *tbt_pg_conninfo(void)
{
	const char *env = getenv("TB_PG_CONNINFO");
	const char *file = getenv("TB_PG_CONNINFO_FILE");
	FILE *f;
	size_t n = 0;

	if (conninfo_loaded)
		return conninfo_loaded > 0 ? conninfo_buf : NULL;
	conninfo_loaded = -1;
	if (env && *env) {
		n = (size_t)snprintf(conninfo_buf, sizeof conninfo_buf, "%s", env);
	} else if (file && (f = fopen(file, "r"))) {
		n = fread(conninfo_buf, 1, sizeof conninfo_buf - 1, f);
		fclose(f);
		conninfo_buf[n] = '\0';
	}
	while (n > 0 && (conninfo_buf[n - 1] == '\n' || conninfo_buf[n - 1] == ' '))
		conninfo_buf[--n] = '\0';
	if (n > 0 && n < sizeof conninfo_buf)
		conninfo_loaded = 1;
	return conninfo_loaded > 0 ? conninfo_buf : NULL;
}

static PGconn *connection(void)
{
	const char *conninfo = tbt_pg_conninfo();

	if (admin)
		return admin;
	if (!conninfo)
		fail_msg("no PostgreSQL server: set TB_PG_CONNINFO or TB_PG_CONNINFO_FILE");
	admin = PQconnectdb(conninfo);
	if (PQstatus(admin) != CONNECTION_OK)
		fail_msg("cannot connect to PostgreSQL: %s", PQerrorMessage(admin));
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	return admin;
}

long long tbt_pg_sql(const char *sql)
{
	PGconn *c = connection();
	PGresult *res = PQexec(c, sql);
	ExecStatusType rs = PQresultStatus(res);
	long long v = -1;

	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
		print_error("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		fail();
	}
	if (rs == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* Append key='value' to a conninfo, quoted as libpq wants. */
static void conninfo_add(char *out, size_t size, const char *key, const char *value)
{
	size_t n = strlen(out);

	n += (size_t)snprintf(out + n, size - n, "%s%s='", n ? " " : "", key);
	for (const char *v = value; *v && n + 3 < size; v++) {
		if (*v == '\'' || *v == '\\')
			out[n++] = '\\';
		out[n++] = *v;
	}
	snprintf(out + n, size - n, "'");
}

/* Append ?key=value or &key=value to a URI, percent-encoding the value. */
static void uri_add(char *out, size_t size, const char *key, const char *value)
{
	size_t n = strlen(out);

	n += (size_t)snprintf(out + n, size - n, "%c%s=", strchr(out, '?') ? '&' : '?', key);
	for (const unsigned char *v = (const unsigned char *)value; *v && n + 4 < size; v++) {
		if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
		    strchr("-._~", *v))
			out[n++] = (char)*v;
		else
			n += (size_t)snprintf(out + n, size - n, "%%%02X", *v);
	}
	out[n] = '\0';
}

void tbt_pg_schema(char name[64], char *conninfo, size_t size, char *uri, size_t uri_size)
{
	PQconninfoOption *opts;
	char sql[128], search[96];

	connection();
	opts = PQconninfoParse(tbt_pg_conninfo(), NULL);
	assert_non_null(opts);
	snprintf(name, 64, "tb_case_%d_%u", (int)getpid(), ++schema_counter);
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
	tbt_pg_sql(sql);
	snprintf(search, sizeof search, "-csearch_path=%s", name);
	conninfo[0] = '\0';
	if (uri)
		snprintf(uri, uri_size, "postgresql://");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val || strcmp(o->keyword, "options") == 0)
			continue;
		conninfo_add(conninfo, size, o->keyword, o->val);
		if (uri)
			uri_add(uri, uri_size, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	conninfo_add(conninfo, size, "options", search);
	if (uri)
		uri_add(uri, uri_size, "options", search);
	/* The adders stop a few bytes short of the end: so much room left means nothing was cut. */
	assert_true(strlen(conninfo) + 8 < size);
	assert_true(!uri || strlen(uri) + 8 < uri_size);
}

void tbt_pg_close(void)
{
	PQfinish(admin);
	admin = NULL;
}
