build-h4/obj/src/ir/op_util.o: src/ir/op_util.c src/ir/ops.h \
 src/ir/graph.h src/base/base.h include/qforge.h src/ir/op_list.h
src/ir/ops.h:
src/ir/graph.h:
src/base/base.h:
include/qforge.h:
src/ir/op_list.h:
