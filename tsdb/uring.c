/* SPDX-License-Identifier: Apache-2.0
 * uring.c - not written yet. */
