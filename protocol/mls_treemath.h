/*
 * mls_treemath.h: array-based binary tree arithmetic (RFC 9420 §4.2, App. C).
 *
 * Nodes are numbered left to right: leaves are even (leaf L is node 2L),
 * parents odd; a node's level is the number of trailing 1 bits. MLS trees
 * are always full, so n_leaves must be a power of two (1, 2, 4, ...);
 * functions taking n_leaves return ERR_INVALID when it is not, or when a
 * node is outside the tree. Pure integer functions: no allocation, no state.
 *
 * Limits: up to MLS_TREEMATH_MAX_LEAVES leaves, so a direct path or copath
 * has at most MLS_TREEMATH_MAX_DEPTH entries.
 */
#ifndef SAMMEN_MLS_TREEMATH_H
#define SAMMEN_MLS_TREEMATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MLS_TREEMATH_MAX_DEPTH 31
#define MLS_TREEMATH_MAX_LEAVES ((uint32_t)1 << 30)

/* Level of node x (0 for leaves). */
uint32_t mls_treemath_level(uint32_t x);
/* True when x is a leaf (even) node. */
bool mls_treemath_is_leaf(uint32_t x);
/* Node index of leaf i (2i), and back (only for even x). */
uint32_t mls_treemath_leaf_to_node(uint32_t leaf);
uint32_t mls_treemath_node_to_leaf(uint32_t node);
/* True when n is a valid leaf count (a power of two, within limits). */
bool mls_treemath_valid_leaves(uint32_t n_leaves);
/* Number of nodes for n_leaves leaves (2n - 1); 0 when n_leaves is 0. */
uint32_t mls_treemath_node_width(uint32_t n_leaves);
/* Root node index: (1 << log2(n_leaves)) - 1. ERR_INVALID for bad n_leaves. */
int mls_treemath_root(uint32_t n_leaves, uint32_t *root);
/* Left/right child of parent node x. ERR_INVALID when x is a leaf. */
int mls_treemath_left(uint32_t x, uint32_t *out);
int mls_treemath_right(uint32_t x, uint32_t *out);
/* Parent of x in a tree of n_leaves leaves. ERR_INVALID when x is the root
 * or outside the tree. */
int mls_treemath_parent(uint32_t x, uint32_t n_leaves, uint32_t *out);
/* Sibling of x (the other child of its parent). ERR_INVALID as parent. */
int mls_treemath_sibling(uint32_t x, uint32_t n_leaves, uint32_t *out);
/* Direct path of x: its ancestors from its parent up to and including the
 * root (empty for the root). Writes up to cap entries into out and the count
 * into *n. ERR_INVALID for a bad node, ERR_TOO_BIG when cap is too small
 * (MLS_TREEMATH_MAX_DEPTH always suffices). */
int mls_treemath_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap,
                             size_t *n);
/* Copath of x: the sibling of x and of each direct-path node except the
 * root, in the same order as the direct path. Same errors. */
int mls_treemath_copath(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n);
/* Lowest common ancestor of nodes x and y (x itself when x == y). */
uint32_t mls_treemath_common_ancestor(uint32_t x, uint32_t y);
/* True when node y is in the subtree rooted at x (including x itself). */
bool mls_treemath_in_subtree(uint32_t x, uint32_t y);

#endif
