build-h4/obj/src/ir/op_registry.o: src/ir/op_registry.c src/ir/ops.h \
 src/ir/graph.h src/base/base.h include/qforge.h src/ir/op_list.h
src/ir/ops.h:
src/ir/graph.h:
src/base/base.h:
include/qforge.h:
src/ir/op_list.h:
