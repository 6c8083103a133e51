/* SPDX-License-Identifier: Apache-2.0
 * fsutil.c - not written yet. */
