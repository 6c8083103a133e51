/* SPDX-License-Identifier: Apache-2.0
 * merge.c - not written yet. */
