/* SPDX-License-Identifier: Apache-2.0
 * blockset.c - not written yet. */
