build-lead/obj/src/ir/graph.o: src/ir/graph.c src/ir/graph.h \
 src/base/base.h include/qforge.h src/ir/op_list.h src/ir/ops.h
src/ir/graph.h:
src/base/base.h:
include/qforge.h:
src/ir/op_list.h:
src/ir/ops.h:
