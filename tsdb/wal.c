/* SPDX-License-Identifier: Apache-2.0
 * wal.c - not written yet. */
