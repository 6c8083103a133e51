/* SPDX-License-Identifier: Apache-2.0
 * head.c - not written yet. */
