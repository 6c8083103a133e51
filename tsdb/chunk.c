/* SPDX-License-Identifier: Apache-2.0
 * chunk.c - not written yet. */
