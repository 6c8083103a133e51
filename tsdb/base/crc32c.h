/* SPDX-License-Identifier: Apache-2.0
 *
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every WAL record, chunk and block section.  Uses the SSE4.2
 * crc32 instruction when the CPU has it, else slicing-by-8 tables.
 *
 * crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef SEISMO_TSDB_BASE_CRC32C_H
#define SEISMO_TSDB_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over len bytes of buf. */
uint32_t sm_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
