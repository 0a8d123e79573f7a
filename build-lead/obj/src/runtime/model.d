build-lead/obj/src/runtime/model.o: src/runtime/model.c src/io/onnx.h \
 src/ir/graph.h src/base/base.h include/qforge.h src/ir/op_list.h \
 src/runtime/runtime.h src/ir/ops.h
src/io/onnx.h:
src/ir/graph.h:
src/base/base.h:
include/qforge.h:
src/ir/op_list.h:
src/runtime/runtime.h:
src/ir/ops.h:
