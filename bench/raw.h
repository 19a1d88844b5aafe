/*
 * bench/raw.h - the baselines: plain SQLite programs doing the library's
 * transactions with prepared statements (see raw.c).
 */
#ifndef TB_BENCH_RAW_H
#define TB_BENCH_RAW_H

#include "util.h"

void raw_order_bench(const char *path, double secs, int ckpt_ms, uint64_t tickets);
void raw_flash_bench(const char *path, double secs, unsigned int threads, unsigned int hot);
void raw_pay_bench(const char *path, double secs, uint64_t orders, unsigned int users);
void raw_events_bench(const char *path, unsigned int page);

#endif
