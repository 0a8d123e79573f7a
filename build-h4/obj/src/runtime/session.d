build-h4/obj/src/runtime/session.o: src/runtime/session.c \
 src/runtime/runtime.h src/ir/graph.h src/base/base.h include/qforge.h \
 src/ir/op_list.h src/ir/ops.h
src/runtime/runtime.h:
src/ir/graph.h:
src/base/base.h:
include/qforge.h:
src/ir/op_list.h:
src/ir/ops.h:
