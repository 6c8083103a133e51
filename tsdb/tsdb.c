/* SPDX-License-Identifier: Apache-2.0
 * tsdb.c - not written yet. */
