/* onnx_pb.c - safe protobuf-c unpacking for the ONNX importer.
 *
 * Two things are added around protobuf-c's generated unpackers:
 *  - an allocator whose every block is qf_malloc_aligned, so the tensor
 *    decoder can adopt a weight buffer (raw_data, float_data, ...) as the
 *    graph's 64-byte aligned constant storage instead of copying it: a
 *    250 MB model then holds one copy of its weights, not two;
 *  - a pre-pass over the wire format that bounds message nesting, because
 *    protobuf-c unpacks sub-messages recursively without a depth limit and
 *    a few kilobytes of hostile input could otherwise exhaust the stack.
 */
#include "io/onnx_internal.h"

static void *pb_alloc(void *user, size_t size) {
    void *p = qf_malloc_aligned(size);
    if (!p && user) *(bool *)user = true;
    return p;
}

static void pb_free(void *user, void *p) {
    (void)user;
    qf_free_aligned(p);
}

/* free_unpacked needs no per-call state. */
static ProtobufCAllocator pb_free_allocator = {pb_alloc, pb_free, NULL};

/* Read a base-128 varint from p[*pos..end). */
static bool wire_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= end) return false;
        uint8_t b = p[(*pos)++];
        if (shift == 63 && (b & 0x7e)) return false; /* beyond 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool qf_onnx_wire_depth_ok(const void *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                           int max_depth) {
    /* Iterative walk with an explicit stack of open sub-messages: the point
     * is to never recurse on attacker-controlled depth. */
    struct {
        size_t end;
        const ProtobufCMessageDescriptor *desc;
    } stack[QF_ONNX_MAX_NESTING + 1];
    if (max_depth > QF_ONNX_MAX_NESTING) max_depth = QF_ONNX_MAX_NESTING;
    const uint8_t *p = buf;
    size_t pos = 0;
    int top = 0;
    stack[0].end = len;
    stack[0].desc = desc;
    for (;;) {
        while (top > 0 && pos == stack[top].end)
            top--;
        if (pos == stack[top].end) return true;
        size_t end = stack[top].end;
        uint64_t key, v;
        if (!wire_varint(p, end, &pos, &key)) return false;
        uint64_t field = key >> 3;
        if (field == 0 || field > UINT32_MAX) return false;
        switch (key & 7) {
        case 0: /* varint */
            if (!wire_varint(p, end, &pos, &v)) return false;
            break;
        case 1: /* fixed64 */
            if (end - pos < 8) return false;
            pos += 8;
            break;
        case 5: /* fixed32 */
            if (end - pos < 4) return false;
            pos += 4;
            break;
        case 2: { /* length-delimited: bytes, string, packed array or message */
            if (!wire_varint(p, end, &pos, &v)) return false;
            if (v > end - pos) return false;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(stack[top].desc, (unsigned)field);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (top >= max_depth) return false;
                top++;
                stack[top].end = pos + (size_t)v;
                stack[top].desc = f->descriptor;
            } else {
                pos += (size_t)v;
            }
            break;
        }
        default: /* groups (3, 4) and invalid wire types: protobuf-c rejects them too */
            return false;
        }
    }
}

static ProtobufCMessage *unpack_checked(const ProtobufCMessageDescriptor *desc, const void *buf,
                                        size_t len, bool *nomem) {
    bool failed_alloc = false;
    if (nomem) *nomem = false;
    if (!qf_onnx_wire_depth_ok(buf, len, desc, QF_ONNX_MAX_NESTING)) return NULL;
    ProtobufCAllocator a = {pb_alloc, pb_free, &failed_alloc};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, buf);
    if (!m && nomem) *nomem = failed_alloc;
    return m;
}

Onnx__ModelProto *qf_onnx_unpack_model(const void *buf, size_t len, bool *nomem) {
    return (Onnx__ModelProto *)unpack_checked(&onnx__model_proto__descriptor, buf, len, nomem);
}

void qf_onnx_free_model(Onnx__ModelProto *m) {
    if (m) onnx__model_proto__free_unpacked(m, &pb_free_allocator);
}

Onnx__TensorProto *qf_onnx_unpack_tensor(const void *buf, size_t len, bool *nomem) {
    return (Onnx__TensorProto *)unpack_checked(&onnx__tensor_proto__descriptor, buf, len, nomem);
}

void qf_onnx_free_tensor(Onnx__TensorProto *t) {
    if (t) onnx__tensor_proto__free_unpacked(t, &pb_free_allocator);
}
