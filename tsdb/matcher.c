/* SPDX-License-Identifier: Apache-2.0
 * matcher.c - not written yet. */
