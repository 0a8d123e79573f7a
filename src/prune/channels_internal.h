/* channels_internal.h - the private side of qf_chan_groups, shared by the
 * dependency analysis (channels.c) and the scoring/removal (structured.c).
 *
 * A "layout" describes the channel axis of one tensor: a list of segments,
 * each `count` channels of one raw group (or of nothing prunable, group -1),
 * each channel occupying `block` consecutive positions along the axis (1
 * for NCHW activations; H*W after a Flatten). Concat appends segments. Every
 * constant that must shrink with a group is recorded as a slice: the value,
 * the axis, and the layout of that axis. */
#ifndef QF_PRUNE_CHANNELS_INTERNAL_H
#define QF_PRUNE_CHANNELS_INTERNAL_H

#include "prune/prune.h"

typedef struct chan_seg {
    int group;     /* raw group id, -1 = fixed channels */
    int64_t count; /* channels */
    int64_t block; /* positions per channel along the axis */
} chan_seg;

typedef struct chan_layout {
    int axis;
    int n; /* segments; 0 = the tensor carries no prunable channels */
    chan_seg *segs;
} chan_layout;

typedef struct chan_slice {
    int value; /* constant to shrink */
    int axis;
    int node;  /* the node that reads it (for messages) */
    chan_layout lay;
} chan_slice;

enum { CHAN_FIX_DW_GROUP = 1, CHAN_FIX_RESHAPE = 2 };
typedef struct chan_fix {
    int kind;
    int node;
    int value; /* CHAN_FIX_RESHAPE: the shape constant */
    int index; /* CHAN_FIX_RESHAPE: entry to rewrite */
    chan_layout lay; /* its new size is this layout's kept total */
} chan_fix;

typedef struct chan_raw {
    int parent;
    int64_t count;
    int node;    /* producing node */
    int weight;  /* weight value */
    int w_axis;  /* output-channel axis of the weight */
    bool frozen;
    char why[160];
} chan_raw;

struct qf_chan_groups {
    qf_arena arena; /* layouts' segments */
    chan_raw *raw;
    int n_raw, cap_raw;
    chan_slice *slices;
    int n_slices, cap_slices;
    chan_fix *fixes;
    int n_fixes, cap_fixes;
    /* final groups: roots of the raw union-find */
    int n;
    qf_chan_group *groups;
    int *raw_group; /* raw id -> final group index */
    int n_nodes_seen, n_values_seen; /* sanity check: cg built from this graph */
};

int qf_chan_find(qf_chan_groups *cg, int r);
int64_t qf_chan_layout_total(const chan_layout *l);

#endif /* QF_PRUNE_CHANNELS_INTERNAL_H */
