/* SPDX-License-Identifier: Apache-2.0
 * block.c - not written yet. */
